// CRC-32 (IEEE 802.3, reflected; zlib's crc32) by carry-less multiplication.
//
// Why not only zlib: zlib 1.2.13's braided table code runs at a few GB/s and
// uses the same integer ALUs and load ports as the MD5 chain in the fused
// kernel; PCLMULQDQ folding is several times faster and runs on the vector
// units (see crc32_clmul.h). zlib remains the portable path and handles the
// sub-16-byte tails.

#include <immintrin.h>
#include <zlib.h>

#include "crc32_clmul.h"
#include "crypto_kernels.h"

namespace hashsieve::digest::detail {
namespace {

// Below this the folding set-up costs more than it saves.
constexpr std::size_t kClmulMinBytes = 64;

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
  const __m128i k = _mm_load_si128(reinterpret_cast<const __m128i*>(kCrcK1K2));
  buf += 64;
  len -= 64;
  // Four independent 128-bit lanes, each folded 512 bits forward per step.
  for (; len >= 64; buf += 64, len -= 64) {
    x1 = crc_fold(x1, load(buf), k);
    x2 = crc_fold(x2, load(buf + 16), k);
    x3 = crc_fold(x3, load(buf + 32), k);
    x4 = crc_fold(x4, load(buf + 48), k);
  }
  x1 = crc_merge4(x1, x2, x3, x4);
  const __m128i k128 = _mm_load_si128(reinterpret_cast<const __m128i*>(kCrcK3K4));
  for (; len >= 16; buf += 16, len -= 16) x1 = crc_fold(x1, load(buf), k128);
  return crc_reduce128(x1);
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
