// How sdhash 3.4 chooses between stream and block mode for an input, and how
// it splits long block-mode inputs into named segments (spec section 9).
// The CLI and the scan pipeline both use this, so a file in an image gets the
// same digest that `sdhash FILE` would give.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "hashsieve/digest/sdbf.h"

namespace hashsieve::digest {

inline constexpr std::uint64_t kSdbfLargeFileBytes = 16ull << 20;   // >= this: "large"
inline constexpr std::uint32_t kSdbfDefaultBlockBytes = 16 * 1024;
inline constexpr std::uint64_t kSdbfDefaultSegmentBytes = 128ull << 20;

struct SdbfPolicy {
  // Block size in KiB as given to `-b`: nullopt = unset (stream mode for small
  // inputs, 16 KiB blocks for large ones); 0 = stream mode for every input;
  // 1..16 = block mode with that many KiB for every input (larger is clamped).
  std::optional<int> block_kib;
  std::uint64_t segment_bytes = kSdbfDefaultSegmentBytes;  // `-z N` is N MiB
};

enum class SdbfPlanMode { stream, block };

struct SdbfPlan {
  SdbfPlanMode mode = SdbfPlanMode::stream;
  std::uint32_t block_size = 0;  // bytes, block mode only
};

// The mode sdhash 3.4 uses for an input of `size` bytes under `policy`.
SdbfPlan plan_sdbf(std::uint64_t size, const SdbfPolicy& policy);

// One piece of an input that gets its own digest line.
struct SdbfSegment {
  std::uint64_t offset = 0;
  std::uint64_t length = 0;
  std::string name;
};

// Splits an input into the segments sdhash names `<name>.<NNNN>M`. Block mode
// only: inputs up to segment_bytes + 512 bytes stay whole and unsuffixed (unless
// `always_suffix`, which stdin uses), a final piece of <= 512 bytes is merged
// into the segment before it.
std::vector<SdbfSegment> segment_input(const std::string& name, std::uint64_t size,
                                       std::uint64_t segment_bytes, bool always_suffix);

// All digests sdhash 3.4 would print for one input: zero (input < 512 bytes),
// one, or one per segment. `threads` parallelises block mode within the input.
std::vector<Sdbf> make_sdbf_digests(const std::string& name, std::span<const std::uint8_t> data,
                                    const SdbfPolicy& policy, unsigned threads = 1);

}  // namespace hashsieve::digest
