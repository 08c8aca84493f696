// apply_whiteouts: paths are interned into a tree of ids once (one hash
// lookup per change), then one pass over the layers from the top down works
// on plain vectors indexed by id.
//
// Going down, the layers above the current one (and the later entries of the
// current layer) have been folded into two per-path values, the LOWEST layer
// that
//   exact[p]:   put an entry or a whiteout at p (hides an entry at p);
//   subtree[p]: hides everything strictly under p (a non-directory entry or
//               a whiteout at p, or an opaque whiteout of directory p).
// An entry at p is hidden by min(exact[p], subtree[a] for every strict
// ancestor a of p, the root included). Within a layer the entries are taken
// in reverse tar order so a later duplicate (or a later non-directory over a
// directory) hides the earlier one; the layer's whiteouts are folded in only
// after its own entries, because they never act on their own layer.
// Cost: O(changes x path depth) array reads after O(changes) hash lookups.
#include "hashsieve/image/whiteouts.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <string_view>
#include <unordered_map>

namespace hashsieve::image {

namespace {

constexpr std::uint32_t kNoParent = std::numeric_limits<std::uint32_t>::max();
constexpr std::size_t kNever = std::numeric_limits<std::size_t>::max();

// Every path and all of its ancestors, as ids with parent links; id 0 is the root "".
class PathTree {
 public:
  explicit PathTree(std::size_t expected) {
    ids_.reserve(expected + expected / 4);
    parent_.reserve(expected + expected / 4);
    ids_.emplace(std::string_view(), 0);
    parent_.push_back(kNoParent);
  }

  std::uint32_t intern(std::string_view path) {
    if (auto it = ids_.find(path); it != ids_.end()) return it->second;
    // Climb to the nearest known ancestor, then create the missing ones downwards.
    missing_.clear();
    missing_.push_back(path);
    std::uint32_t known = 0;
    for (std::string_view p = path;;) {
      const std::size_t slash = p.rfind('/');
      if (slash == std::string_view::npos) break;  // parent is the root
      p = p.substr(0, slash);
      if (auto it = ids_.find(p); it != ids_.end()) {
        known = it->second;
        break;
      }
      missing_.push_back(p);
    }
    for (auto it = missing_.rbegin(); it != missing_.rend(); ++it) {
      const auto id = static_cast<std::uint32_t>(parent_.size());
      parent_.push_back(known);
      ids_.emplace(*it, id);
      known = id;
    }
    return known;
  }

  std::uint32_t parent(std::uint32_t id) const { return parent_[id]; }
  std::size_t size() const { return parent_.size(); }

 private:
  std::unordered_map<std::string_view, std::uint32_t> ids_;
  std::vector<std::uint32_t> parent_;
  std::vector<std::string_view> missing_;
};

}  // namespace

HiddenBy apply_whiteouts(const std::vector<std::vector<LayerChange>>& layers) {
  std::size_t total = 0;
  for (const auto& layer : layers) total += layer.size();
  PathTree tree(total);
  std::vector<std::vector<std::uint32_t>> ids(layers.size());
  for (std::size_t l = 0; l < layers.size(); ++l) {
    ids[l].reserve(layers[l].size());
    for (const LayerChange& change : layers[l]) ids[l].push_back(tree.intern(change.path));
  }

  std::vector<std::size_t> exact(tree.size(), kNever);
  std::vector<std::size_t> subtree(tree.size(), kNever);
  HiddenBy hidden(layers.size());
  for (std::size_t l = layers.size(); l-- > 0;) {
    const auto& layer = layers[l];
    auto& out = hidden[l];
    out.assign(layer.size(), std::nullopt);
    for (std::size_t i = layer.size(); i-- > 0;) {
      const EntryKind kind = layer[i].kind;
      if (kind == EntryKind::whiteout || kind == EntryKind::opaque_whiteout) {
        // A whiteout marker is never part of the final filesystem: its own
        // layer consumes it.
        out[i] = l;
        continue;
      }
      const std::uint32_t id = ids[l][i];
      std::size_t best = exact[id];
      for (std::uint32_t a = tree.parent(id); a != kNoParent; a = tree.parent(a)) best = std::min(best, subtree[a]);
      if (best != kNever) out[i] = best;
      // Every value already stored comes from a higher layer or a later entry
      // of this one, so `l` is the new minimum.
      exact[id] = l;
      if (kind != EntryKind::directory) subtree[id] = l;
    }
    for (std::size_t i = 0; i < layer.size(); ++i) {
      const std::uint32_t id = ids[l][i];
      if (layer[i].kind == EntryKind::whiteout) {
        exact[id] = l;
        subtree[id] = l;
      } else if (layer[i].kind == EntryKind::opaque_whiteout) {
        subtree[id] = l;
      }
    }
  }
  return hidden;
}

}  // namespace hashsieve::image
