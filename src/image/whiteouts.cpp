// apply_whiteouts: one pass over the layers from the top down.
//
// Going down, the layers above the current one have already been folded into
// two maps holding, per path, the LOWEST layer (the first one applied after
// the current layer) that
//   exact[p]:   put an entry or a whiteout at p (hides an entry at p);
//   subtree[p]: hides everything strictly under p (a non-directory entry or
//               a whiteout at p, or an opaque whiteout of directory p).
// An entry at p is hidden by min(exact[p], subtree[a] for every strict
// ancestor a of p, the root "" included). Entries of the same layer are
// checked first against the later entries of that layer (the last duplicate
// wins; a later non-directory replaces a directory's subtree); whiteouts
// never act on their own layer. Cost: O(entries x path depth) hash lookups
// on string_views into the caller's paths, no allocation per lookup.
#include "hashsieve/image/whiteouts.h"

#include <string_view>
#include <unordered_map>

namespace hashsieve::image {

namespace {

using PathMap = std::unordered_map<std::string_view, std::size_t>;

// Calls f(ancestor) for "" and every strict ancestor directory of `path`.
template <typename F>
void for_each_ancestor(std::string_view path, F&& f) {
  if (path.empty()) return;  // the root has no ancestors
  f(std::string_view());
  for (std::size_t slash = path.find('/'); slash != std::string_view::npos; slash = path.find('/', slash + 1)) {
    f(path.substr(0, slash));
  }
}

bool is_whiteout(EntryKind kind) { return kind == EntryKind::whiteout || kind == EntryKind::opaque_whiteout; }

}  // namespace

HiddenBy apply_whiteouts(const std::vector<std::vector<LayerChange>>& layers) {
  HiddenBy hidden(layers.size());
  std::size_t total = 0;
  for (const auto& layer : layers) total += layer.size();
  PathMap exact;
  PathMap subtree;
  exact.reserve(total);
  subtree.reserve(total / 4 + 16);

  PathMap same_exact;    // later entries of the current layer
  PathMap same_subtree;  // later non-directory entries of the current layer
  for (std::size_t l = layers.size(); l-- > 0;) {
    const auto& layer = layers[l];
    auto& out = hidden[l];
    out.assign(layer.size(), std::nullopt);
    same_exact.clear();
    same_subtree.clear();
    for (std::size_t i = layer.size(); i-- > 0;) {
      const LayerChange& change = layer[i];
      const std::string_view path = change.path;
      if (is_whiteout(change.kind)) {
        // A whiteout marker is never part of the final filesystem: it is
        // consumed by its own layer.
        out[i] = l;
        continue;
      }
      bool hidden_here = same_exact.contains(path);
      if (!hidden_here) {
        for_each_ancestor(path, [&](std::string_view a) { hidden_here = hidden_here || same_subtree.contains(a); });
      }
      if (hidden_here) {
        out[i] = l;
      } else {
        std::optional<std::size_t> best;
        auto consider = [&](const PathMap& map, std::string_view key) {
          if (auto it = map.find(key); it != map.end() && (!best || it->second < *best)) best = it->second;
        };
        consider(exact, path);
        for_each_ancestor(path, [&](std::string_view a) { consider(subtree, a); });
        out[i] = best;
      }
      same_exact.emplace(path, l);
      if (change.kind != EntryKind::directory) same_subtree.emplace(path, l);
    }
    // Fold this layer into the maps for the layers below. Every value already
    // there comes from a higher layer, so this layer's index is the minimum.
    for (const LayerChange& change : layer) {
      const std::string_view path = change.path;
      switch (change.kind) {
        case EntryKind::opaque_whiteout:
          subtree[path] = l;
          break;
        case EntryKind::whiteout:
          exact[path] = l;
          subtree[path] = l;
          break;
        case EntryKind::directory:
          exact[path] = l;
          break;
        default:
          exact[path] = l;
          subtree[path] = l;
          break;
      }
    }
  }
  return hidden;
}

}  // namespace hashsieve::image
