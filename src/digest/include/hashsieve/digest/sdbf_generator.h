// SDBF generation, byte-identical to sdhash 3.4 (spec sections 2-6).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
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

// A reusable generator: owns the per-position scratch buffers (about 3.5
// bytes per input byte of the largest region seen: a 32 MiB stream chunk or
// one block), so hashing many files allocates only the output. Not thread-safe;
// use one per thread. The free functions above use a thread-local instance.
class SdbfGenerator {
 public:
  SdbfGenerator();
  ~SdbfGenerator();
  SdbfGenerator(SdbfGenerator&&) noexcept;
  SdbfGenerator& operator=(SdbfGenerator&&) noexcept;
  SdbfGenerator(const SdbfGenerator&) = delete;
  SdbfGenerator& operator=(const SdbfGenerator&) = delete;

  std::optional<Sdbf> stream(std::string name, std::span<const std::uint8_t> data);
  std::optional<Sdbf> block(std::string name, std::span<const std::uint8_t> data,
                            std::uint32_t block_size, unsigned threads = 1);
  // Releases scratch buffers sized for more than `max_positions` input bytes.
  void trim_scratch(std::size_t max_positions);

  struct Scratch;

 private:
  std::unique_ptr<Scratch> scratch_;
};

}  // namespace hashsieve::digest
