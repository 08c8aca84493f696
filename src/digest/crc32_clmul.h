// CRC-32 folding primitives (PCLMULQDQ), shared by the stand-alone CRC path
// (crypto_crc32.cpp) and the fused hash kernel, which folds CRC lanes in the
// same loop as its MD5/SHA rounds. Algorithm and constants: Gopal, Ozturk et
// al., "Fast CRC Computation for Generic Polynomials Using PCLMULQDQ
// Instruction", Intel 2009 (also Chromium's zlib crc32_simd). All values are in
// the bit-reflected domain of zlib's CRC-32 (P = 0x1db710641).
#pragma once

#include <immintrin.h>

#include <cstdint>

namespace hashsieve::digest::detail {

#define HS_CLMUL_INLINE __attribute__((target("pclmul,sse4.1"), always_inline)) inline

// Bit-reflected x^n mod P constants for folding by the distance noted (bits),
// as tabulated in the paper.
alignas(16) inline constexpr std::uint64_t kCrcK1K2[2] = {0x0154442bd4, 0x01c6e41596};  // 512
alignas(16) inline constexpr std::uint64_t kCrcK3K4[2] = {0x01751997d0, 0x00ccaa009e};  // 128
alignas(16) inline constexpr std::uint64_t kCrcK5K0[2] = {0x0163cd6124, 0x0000000000};  // 64->32
alignas(16) inline constexpr std::uint64_t kCrcPoly[2] = {0x01db710641, 0x01f7011641};  // P, mu

// Folds `acc` forward by the distance encoded in `k` onto `next`. A function,
// not a lambda: GCC does not give lambdas the enclosing target attribute.
HS_CLMUL_INLINE __m128i crc_fold(__m128i acc, __m128i next, __m128i k) {
  const __m128i lo = _mm_clmulepi64_si128(acc, k, 0x00);
  const __m128i hi = _mm_clmulepi64_si128(acc, k, 0x11);
  return _mm_xor_si128(_mm_xor_si128(hi, next), lo);
}

// Merges four 128-bit lanes, consecutive in the stream (x1 first), into one.
HS_CLMUL_INLINE __m128i crc_merge4(__m128i x1, __m128i x2, __m128i x3, __m128i x4) {
  const __m128i k = _mm_load_si128(reinterpret_cast<const __m128i*>(kCrcK3K4));
  x1 = crc_fold(x1, x2, k);
  x1 = crc_fold(x1, x3, k);
  return crc_fold(x1, x4, k);
}

// Reduces a 128-bit remainder to the 32-bit CRC shift register (the
// complement of zlib's crc32() value).
HS_CLMUL_INLINE std::uint32_t crc_reduce128(__m128i x1) {
  const __m128i mask32 = _mm_setr_epi32(~0, 0, ~0, 0);
  __m128i k = _mm_load_si128(reinterpret_cast<const __m128i*>(kCrcK3K4));
  // 128 -> 64 bits.
  __m128i x2 = _mm_clmulepi64_si128(x1, k, 0x10);
  x1 = _mm_xor_si128(_mm_srli_si128(x1, 8), x2);
  k = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(kCrcK5K0));
  x2 = _mm_srli_si128(x1, 4);
  x1 = _mm_clmulepi64_si128(_mm_and_si128(x1, mask32), k, 0x00);
  x1 = _mm_xor_si128(x1, x2);
  // Barrett reduction to 32 bits.
  k = _mm_load_si128(reinterpret_cast<const __m128i*>(kCrcPoly));
  x2 = _mm_clmulepi64_si128(_mm_and_si128(x1, mask32), k, 0x10);
  x2 = _mm_clmulepi64_si128(_mm_and_si128(x2, mask32), k, 0x00);
  x1 = _mm_xor_si128(x1, x2);
  return static_cast<std::uint32_t>(_mm_extract_epi32(x1, 1));
}

}  // namespace hashsieve::digest::detail
