// ResolvedImage <-> JSON, stored with each result so a rescan walks the same
// layers without asking the registry for the manifest again.
#pragma once

#include <string>

#include "hashsieve/core/result.h"
#include "hashsieve/image/source.h"

namespace hashsieve::worker {

std::string resolved_to_json(const image::ResolvedImage& image);
Result<image::ResolvedImage> resolved_from_json(const std::string& text);

}  // namespace hashsieve::worker
