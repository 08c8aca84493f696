// Applying OCI whiteouts across layers, after per-layer facts are known.
//
// Input: every layer's changes in tar order. Output: for each change, the
// layer that hid it (by a whiteout, an opaque directory, or a later entry at
// the same path), or nullopt if it is visible in the final filesystem.
// Hidden files still ship in the image's blobs, so the scan reports them
// rather than dropping them. Rules (image-spec layer.md):
//  - ".wh.<name>" hides <name> and everything under it in LOWER layers only;
//  - "<dir>/.wh..wh..opq" hides all lower-layer children of <dir>, wherever
//    it sits in its own tar;
//  - a later entry at the same path replaces the earlier one (and, when the
//    earlier one was a directory and the new one is not, everything under it);
//  - a duplicate path within one layer: the last entry wins.
// Whiteout and opaque-whiteout changes themselves are never visible: their
// hidden_by is their own layer. A directory followed by a directory at the
// same path is hidden (its attributes are replaced) but its children stay.
// Cost: O(entries x path depth) hash lookups; the paths are not copied.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "hashsieve/image/layer_entries.h"

namespace hashsieve::image {

struct LayerChange {
  std::string path;  // as LayerEntry::path
  EntryKind kind = EntryKind::regular;
};

// hidden_by[layer][i] is the index of the layer that hid layers[layer][i].
using HiddenBy = std::vector<std::vector<std::optional<std::size_t>>>;

HiddenBy apply_whiteouts(const std::vector<std::vector<LayerChange>>& layers);

}  // namespace hashsieve::image
