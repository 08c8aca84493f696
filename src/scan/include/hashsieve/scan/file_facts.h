// Facts of one file whose bytes are already in memory, outside any layer:
// what the runtime module needs to match a running container's drifted
// files with the same matchers and classification as an image scan.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "hashsieve/core/result.h"
#include "hashsieve/scan/facts.h"

namespace hashsieve::scan {

// Every digest the layer hasher computes for a regular file (crypto, SDBF,
// TLSH, ssdeep, content keys; similarity_computed = true): a record that
// classify() treats exactly like one from an image layer. `path` is relative
// to the root, without a leading '/'.
Result<FileRecord> file_record_from_bytes(const std::string& path, std::uint32_t mode,
                                          std::span<const std::uint8_t> bytes);

}  // namespace hashsieve::scan
