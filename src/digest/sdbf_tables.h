// Numeric tables of sdhash 3.4 (spec section 2). Internal to the digest module.
#pragma once

#include <array>
#include <cstdint>

namespace hashsieve::digest {

// E[n]: integer entropy contribution of a byte value seen n times (n = 0..64)
// in a 64-byte window; the sum over a window is 0..1024000.
extern const std::array<std::uint32_t, 65> kSdbfEntropy64;
// Entropy bin (entropy >> 10, 0..1000) -> precedence rank; 0 = not eligible,
// otherwise a smaller rank is preferred.
extern const std::array<std::uint16_t, 1001> kSdbfEntropyRanks;

}  // namespace hashsieve::digest
