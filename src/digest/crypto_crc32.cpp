// CRC-32 (IEEE 802.3, reflected; zlib's crc32) by carry-less multiplication.
//
// Why not only zlib: zlib 1.2.13's braided table code runs at a few GB/s and
// uses the same integer ALUs and load ports as the MD5 chain in the fused
// kernel; PCLMULQDQ folding is several times faster and runs on the vector
// units. Algorithm and constants: Gopal, Ozturk et al., "Fast CRC Computation
// for Generic Polynomials Using PCLMULQDQ Instruction", Intel 2009 (the same
// scheme as Chromium's zlib crc32_simd). zlib remains the portable path and
// handles the sub-16-byte tails.

#include <immintrin.h>
#include <zlib.h>

#include "crypto_kernels.h"

namespace hashsieve::digest::detail {
namespace {

// Below this the folding set-up costs more than it saves.
constexpr std::size_t kClmulMinBytes = 64;

// Bit-reflected folding constants (x^(k) mod P for the fold distances) and
// the Barrett constants for P = 0x1db710641, from the paper's appendix.
alignas(16) constexpr std::uint64_t kK1K2[2] = {0x0154442bd4, 0x01c6e41596};  // fold by 512 bits
alignas(16) constexpr std::uint64_t kK3K4[2] = {0x01751997d0, 0x00ccaa009e};  // fold by 128 bits
alignas(16) constexpr std::uint64_t kK5K0[2] = {0x0163cd6124, 0x0000000000};  // 64 -> 32 bits
alignas(16) constexpr std::uint64_t kPoly[2] = {0x01db710641, 0x01f7011641};  // P, Barrett mu

// Folds `acc` 128 bits forward onto `next`. A function, not a lambda: GCC does
// not give lambdas the enclosing function's target attribute.
__attribute__((target("pclmul,sse4.1"), always_inline)) inline __m128i fold16(__m128i acc,
                                                                             __m128i next,
                                                                             __m128i k) {
  __m128i lo = _mm_clmulepi64_si128(acc, k, 0x00);
  __m128i hi = _mm_clmulepi64_si128(acc, k, 0x11);
  return _mm_xor_si128(_mm_xor_si128(hi, next), lo);
}

// CRC of `len` bytes (len >= 64, multiple of 16) continuing the un-inverted
// register value `crc`.
__attribute__((target("pclmul,sse4.1"))) std::uint32_t crc32_fold(const std::uint8_t* buf,
                                                                   std::size_t len,
                                                                   std::uint32_t crc) {
  auto load = [](const std::uint8_t* p) {
    return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  };
  __m128i x1 = _mm_xor_si128(load(buf), _mm_cvtsi32_si128(static_cast<int>(crc)));
  __m128i x2 = load(buf + 16);
  __m128i x3 = load(buf + 32);
  __m128i x4 = load(buf + 48);
  __m128i k = _mm_load_si128(reinterpret_cast<const __m128i*>(kK1K2));
  buf += 64;
  len -= 64;

  // Four independent 128-bit lanes, each folded 512 bits forward.
  while (len >= 64) {
    __m128i x5 = _mm_clmulepi64_si128(x1, k, 0x00);
    __m128i x6 = _mm_clmulepi64_si128(x2, k, 0x00);
    __m128i x7 = _mm_clmulepi64_si128(x3, k, 0x00);
    __m128i x8 = _mm_clmulepi64_si128(x4, k, 0x00);
    x1 = _mm_clmulepi64_si128(x1, k, 0x11);
    x2 = _mm_clmulepi64_si128(x2, k, 0x11);
    x3 = _mm_clmulepi64_si128(x3, k, 0x11);
    x4 = _mm_clmulepi64_si128(x4, k, 0x11);
    x1 = _mm_xor_si128(_mm_xor_si128(x1, x5), load(buf));
    x2 = _mm_xor_si128(_mm_xor_si128(x2, x6), load(buf + 16));
    x3 = _mm_xor_si128(_mm_xor_si128(x3, x7), load(buf + 32));
    x4 = _mm_xor_si128(_mm_xor_si128(x4, x8), load(buf + 48));
    buf += 64;
    len -= 64;
  }

  // Fold the four lanes into one, then any remaining 16-byte blocks.
  k = _mm_load_si128(reinterpret_cast<const __m128i*>(kK3K4));
  x1 = fold16(x1, x2, k);
  x1 = fold16(x1, x3, k);
  x1 = fold16(x1, x4, k);
  for (; len >= 16; buf += 16, len -= 16) x1 = fold16(x1, load(buf), k);

  // 128 -> 64 bits.
  const __m128i mask32 = _mm_setr_epi32(~0, 0, ~0, 0);
  x2 = _mm_clmulepi64_si128(x1, k, 0x10);
  x1 = _mm_xor_si128(_mm_srli_si128(x1, 8), x2);
  k = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(kK5K0));
  x2 = _mm_srli_si128(x1, 4);
  x1 = _mm_clmulepi64_si128(_mm_and_si128(x1, mask32), k, 0x00);
  x1 = _mm_xor_si128(x1, x2);

  // Barrett reduction to 32 bits.
  k = _mm_load_si128(reinterpret_cast<const __m128i*>(kPoly));
  x2 = _mm_clmulepi64_si128(_mm_and_si128(x1, mask32), k, 0x10);
  x2 = _mm_clmulepi64_si128(_mm_and_si128(x2, mask32), k, 0x00);
  x1 = _mm_xor_si128(x1, x2);
  return static_cast<std::uint32_t>(_mm_extract_epi32(x1, 1));
}

}  // namespace

bool crc32_clmul_supported() {
  static const bool supported = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("pclmul") && __builtin_cpu_supports("sse4.1");
  }();
  return supported;
}

std::uint32_t crc32_update_portable(std::uint32_t crc, std::span<const std::uint8_t> data) {
  return static_cast<std::uint32_t>(::crc32_z(crc, data.data(), data.size()));
}

std::uint32_t crc32_update_clmul(std::uint32_t crc, std::span<const std::uint8_t> data) {
  if (data.size() < kClmulMinBytes) return crc32_update_portable(crc, data);
  const std::size_t bulk = data.size() & ~std::size_t{15};
  // The folding works on the raw shift register; zlib's API value is its
  // complement.
  crc = ~crc32_fold(data.data(), bulk, ~crc);
  return crc32_update_portable(crc, data.subspan(bulk));
}

std::uint32_t crc32_update(std::uint32_t crc, std::span<const std::uint8_t> data) {
  return crc32_clmul_supported() ? crc32_update_clmul(crc, data)
                                 : crc32_update_portable(crc, data);
}

}  // namespace hashsieve::digest::detail
