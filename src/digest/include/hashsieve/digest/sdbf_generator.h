// SDBF generation, byte-identical to sdhash 3.4 (spec sections 2-6).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include "hashsieve/digest/sdbf.h"

namespace hashsieve::digest {

// Stream mode ("sdbf"): inputs are processed in independent 32 MiB chunks.
// Returns nullopt for inputs shorter than 512 bytes (the reference skips them).
std::optional<Sdbf> make_stream_sdbf(std::string name, std::span<const std::uint8_t> data);

// Block mode ("sdbf-dd") with `block_size` bytes per block (1..16 KiB in the
// CLI; any size >= 512 works here). Blocks are independent, so `threads` > 1
// splits them across threads and the result does not depend on it.
// Returns nullopt for inputs shorter than 512 bytes.
std::optional<Sdbf> make_block_sdbf(std::string name, std::span<const std::uint8_t> data,
                                    std::uint32_t block_size, unsigned threads = 1);

}  // namespace hashsieve::digest
