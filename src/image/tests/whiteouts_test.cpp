#include "hashsieve/image/whiteouts.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

namespace hashsieve::image {
namespace {

constexpr int kVisible = -1;

LayerChange f(std::string path) { return {std::move(path), EntryKind::regular}; }
LayerChange d(std::string path) { return {std::move(path), EntryKind::directory}; }
LayerChange s(std::string path) { return {std::move(path), EntryKind::symlink}; }
LayerChange wh(std::string path) { return {std::move(path), EntryKind::whiteout}; }
LayerChange opq(std::string path) { return {std::move(path), EntryKind::opaque_whiteout}; }

TEST(ApplyWhiteouts, Table) {
  struct Case {
    std::string name;
    std::vector<std::vector<LayerChange>> layers;
    std::vector<std::vector<int>> want;  // hidden_by per change, kVisible for nullopt
  };
  const std::vector<Case> cases = {
      {"formats.md worked example",
       {{f("bin/tool"), f("etc/a"), f("etc/b")},
        {wh("etc/a"), f("bin/tool")},
        {f("etc/x"), opq("etc")}},
       {{1, 1, 2}, {1, kVisible}, {kVisible, 2}}},
      {"no layers", {}, {}},
      {"single layer all visible", {{d("etc"), f("etc/a"), s("bin/sh")}}, {{kVisible, kVisible, kVisible}}},
      {"opaque whiteout first in its tar", {{d("etc"), f("etc/a")}, {opq("etc"), f("etc/b")}},
       {{kVisible, 1}, {1, kVisible}}},
      {"opaque whiteout last in its tar", {{d("etc"), f("etc/a")}, {f("etc/b"), opq("etc")}},
       {{kVisible, 1}, {kVisible, 1}}},
      {"opaque whiteout hides deep children not the directory", {{d("etc"), d("etc/ssl"), f("etc/ssl/cert")}, {opq("etc")}},
       {{kVisible, 1, 1}, {1}}},
      {"opaque root", {{f("a"), f("b/c")}, {opq("")}}, {{1, 1}, {1}}},
      {"whiteout of a directory hides its subtree",
       {{d("opt"), d("opt/app"), f("opt/app/bin"), f("opt2/keep")}, {wh("opt/app")}},
       {{kVisible, 1, 1, kVisible}, {1}}},
      {"whiteout does not match a name prefix", {{f("etc/ab"), f("etc/a/x")}, {wh("etc/a")}},
       {{kVisible, 1}, {1}}},
      {"whiteout does not affect its own layer", {{f("etc/a")}, {wh("etc/a"), f("etc/a")}},
       {{1}, {1, kVisible}}},
      {"whiteout after same-layer entry", {{f("etc/a")}, {f("etc/a"), wh("etc/a")}}, {{1}, {kVisible, 1}}},
      {"replaced file", {{f("bin/tool")}, {f("bin/tool")}, {}}, {{1}, {kVisible}, {}}},
      {"first hiding layer is reported", {{f("x")}, {f("x")}, {f("x")}}, {{1}, {2}, {kVisible}}},
      {"whiteout in layer 2, replacement in layer 1", {{f("x")}, {f("x")}, {wh("x")}}, {{1}, {2}, {2}}},
      {"directory replaced by file", {{d("lib"), f("lib/a.so"), d("lib/sub"), f("lib/sub/b")}, {f("lib")}},
       {{1, 1, 1, 1}, {kVisible}}},
      {"directory replaced by symlink", {{d("lib"), f("lib/a.so")}, {s("lib")}}, {{1, 1}, {kVisible}}},
      {"directory over directory keeps children", {{d("etc"), f("etc/a")}, {d("etc")}}, {{1, kVisible}, {kVisible}}},
      {"file replaced by directory", {{f("x")}, {d("x"), f("x/y")}}, {{1}, {kVisible, kVisible}}},
      {"duplicate path in one layer: last wins", {{f("a"), f("b"), f("a")}}, {{0, kVisible, kVisible}}},
      {"same-layer file over directory", {{d("a"), f("a/b"), f("a")}}, {{0, 0, kVisible}}},
      {"whiteout then re-add in a later layer", {{f("a")}, {wh("a")}, {f("a")}}, {{1}, {1}, {kVisible}}},
      {"hidden entries of middle layer", {{d("etc")}, {f("etc/p")}, {opq("etc"), f("etc/q")}},
       {{kVisible}, {2}, {2, kVisible}}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const HiddenBy got = apply_whiteouts(c.layers);
    ASSERT_EQ(got.size(), c.want.size());
    for (std::size_t l = 0; l < got.size(); ++l) {
      ASSERT_EQ(got[l].size(), c.want[l].size()) << "layer " << l;
      for (std::size_t i = 0; i < got[l].size(); ++i) {
        SCOPED_TRACE("layer " + std::to_string(l) + " entry " + c.layers[l][i].path);
        if (c.want[l][i] == kVisible) {
          EXPECT_FALSE(got[l][i].has_value()) << "hidden by " << *got[l][i];
        } else {
          ASSERT_TRUE(got[l][i].has_value());
          EXPECT_EQ(*got[l][i], static_cast<std::size_t>(c.want[l][i]));
        }
      }
    }
  }
}

// The rules of whiteouts.h restated pair by pair, O(n^2): an independent
// reference for random images.
bool strict_ancestor(const std::string& a, const std::string& p) {
  return a.empty() ? !p.empty() : p.size() > a.size() && p.starts_with(a) && p[a.size()] == '/';
}

HiddenBy reference(const std::vector<std::vector<LayerChange>>& layers) {
  HiddenBy out(layers.size());
  for (std::size_t l = 0; l < layers.size(); ++l) {
    for (std::size_t i = 0; i < layers[l].size(); ++i) {
      const LayerChange& e = layers[l][i];
      std::optional<std::size_t> best;
      auto hide = [&](std::size_t by) {
        if (!best || by < *best) best = by;
      };
      if (e.kind == EntryKind::whiteout || e.kind == EntryKind::opaque_whiteout) hide(l);
      for (std::size_t m = l; m < layers.size() && e.kind != EntryKind::whiteout && e.kind != EntryKind::opaque_whiteout; ++m) {
        for (std::size_t j = (m == l ? i + 1 : 0); j < layers[m].size(); ++j) {
          const LayerChange& f = layers[m][j];
          const bool at = f.path == e.path;
          const bool above = strict_ancestor(f.path, e.path);
          if (f.kind == EntryKind::whiteout) {
            if (m > l && (at || above)) hide(m);
          } else if (f.kind == EntryKind::opaque_whiteout) {
            if (m > l && above) hide(m);
          } else if (at || (above && f.kind != EntryKind::directory)) {
            hide(m);
          }
        }
      }
      out[l].push_back(best);
    }
  }
  return out;
}

TEST(ApplyWhiteouts, MatchesReferenceOnRandomImages) {
  std::mt19937 rng(7);
  const std::vector<std::string> names = {"a", "b", "c"};
  const EntryKind kinds[] = {EntryKind::regular, EntryKind::directory, EntryKind::symlink, EntryKind::whiteout,
                             EntryKind::opaque_whiteout};
  for (int round = 0; round < 300; ++round) {
    std::vector<std::vector<LayerChange>> layers(1 + rng() % 4);
    for (auto& layer : layers) {
      const int n = static_cast<int>(rng() % 6);
      for (int k = 0; k < n; ++k) {
        std::string path = names[rng() % names.size()];
        const int depth = static_cast<int>(rng() % 3);
        for (int d = 0; d < depth; ++d) path += "/" + names[rng() % names.size()];
        const EntryKind kind = kinds[rng() % 5];
        if (kind == EntryKind::opaque_whiteout && rng() % 8 == 0) path.clear();  // opaque root
        layer.push_back({path, kind});
      }
    }
    SCOPED_TRACE("round " + std::to_string(round));
    ASSERT_EQ(apply_whiteouts(layers), reference(layers));
  }
}

}  // namespace
}  // namespace hashsieve::image
