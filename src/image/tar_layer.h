// Internals of the layer reader shared with the other local sources and the
// tests: entry path normalisation and whiteout naming.
#pragma once

#include <string>
#include <string_view>

#include "hashsieve/core/result.h"

namespace hashsieve::image {

// Normalises a tar entry path (or hard link target) to the form LayerEntry
// uses: '/'-separated, relative to the image root, no "", "." or ".."
// components. A leading '/' is dropped (absolute paths in layer tars mean
// "from the image root"). A ".." that would climb above the root is
// ErrorCode::invalid_argument naming the path. The root itself is "".
Result<std::string> normalize_entry_path(std::string_view raw);

// Splits a normalised path into its parent directory ("" at the top level)
// and its last component.
struct SplitPath {
  std::string_view parent;
  std::string_view name;
};
SplitPath split_path(std::string_view path);

// Joins a parent directory ("" for the root) and a name.
std::string join_path(std::string_view parent, std::string_view name);

}  // namespace hashsieve::image
