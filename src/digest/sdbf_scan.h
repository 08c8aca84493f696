// The two per-position passes of SDBF generation (spec sections 2 and 3):
// entropy ranks and popularity scores. Internal to the digest module.
#pragma once

#include <cstddef>
#include <cstdint>

namespace hashsieve::digest {

inline constexpr std::size_t kSdbfWindow = 64;

// rank[0..len-1] per spec section 2, incrementally (O(1) per byte).
// Dispatches to AVX-512BW when available.
void sdbf_ranks(const std::uint8_t* buf, std::size_t len, std::uint16_t* rank);

void sdbf_ranks_portable(const std::uint8_t* buf, std::size_t len, std::uint16_t* rank);
// Requires sdbf_scan_has_avx512().
void sdbf_ranks_avx512(const std::uint8_t* buf, std::size_t len, std::uint16_t* rank);

// score[0..len-1] per spec section 3 (overwrites score). The result equals the
// reference's popularity scan exactly, shortcut quirks included. Dispatches to
// AVX-512 (F/BW/VL/VBMI) when available.
void sdbf_scores(const std::uint16_t* rank, std::size_t len, std::uint8_t* score);

// The implementations, exposed for tests. The AVX-512 one must only be called
// when sdbf_scan_has_avx512() is true (AVX-512 F/BW/VL/VBMI, BMI1/2).
bool sdbf_scan_has_avx512();
void sdbf_scores_portable(const std::uint16_t* rank, std::size_t len, std::uint8_t* score);
void sdbf_scores_avx512(const std::uint16_t* rank, std::size_t len, std::uint8_t* score);

// Writes the positions p < n with score[p] >= min_score to out (ascending)
// and returns how many there are. out needs room for that many plus one
// (the portable path stores one slot past the last hit); with scores from
// sdbf_scores that is at most n / min_score + 1.
std::size_t sdbf_select(const std::uint8_t* score, std::size_t n, std::uint8_t min_score,
                        std::uint32_t* out);
std::size_t sdbf_select_portable(const std::uint8_t* score, std::size_t n, std::uint8_t min_score,
                                 std::uint32_t* out);
// Requires sdbf_scan_has_avx512().
std::size_t sdbf_select_avx512(const std::uint8_t* score, std::size_t n, std::uint8_t min_score,
                               std::uint32_t* out);

}  // namespace hashsieve::digest
