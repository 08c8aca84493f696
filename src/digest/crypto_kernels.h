// Internal block kernels behind MultiHasher: the fused MD5/SHA-1/SHA-256
// kernel (SHA-NI) and CRC32 (PCLMULQDQ folding with a zlib fallback).
// Exposed here, not in the public header, so the tests can drive each path.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace hashsieve::digest::detail {

inline constexpr std::size_t kBlockBytes = 64;  // MD5, SHA-1 and SHA-256 alike

// Chaining values in the algorithms' natural word order (FIPS 180-4 H0..Hn,
// RFC 1321 A..D), plus the CRC-32 folding lanes when the kernel computes the
// CRC too (four 128-bit lanes covering the last 64 bytes folded in).
struct FusedState {
  std::uint32_t md5[4];
  std::uint32_t sha1[5];
  std::uint32_t sha256[8];
  alignas(16) std::uint8_t crc_lanes[64];
  bool crc_started;  // false until the first block has been folded in
};

void fused_init(FusedState& state);

// True when the CPU has SHA-NI, SSE4.1 and PCLMULQDQ (checked once).
bool fused_supported();

// Compresses `blocks` 64-byte blocks at `data` into the selected states, with
// the algorithms' rounds interleaved. Requires fused_supported().
void fused_compress(FusedState& state, bool md5, bool sha1, bool sha256, bool crc32,
                    const std::uint8_t* data, std::size_t blocks);

// zlib-style CRC-32 of the blocks folded into `state` followed by `tail`
// (the bytes that did not fill a block). Requires fused_supported().
std::uint32_t fused_crc32_finish(const FusedState& state, std::span<const std::uint8_t> tail);

// CRC-32 (zlib's) continuation: crc32_update(0, ...) starts a new CRC.
// The dispatcher picks PCLMULQDQ folding when available.
std::uint32_t crc32_update(std::uint32_t crc, std::span<const std::uint8_t> data);
std::uint32_t crc32_update_portable(std::uint32_t crc, std::span<const std::uint8_t> data);
// Requires crc32_clmul_supported().
std::uint32_t crc32_update_clmul(std::uint32_t crc, std::span<const std::uint8_t> data);
bool crc32_clmul_supported();

}  // namespace hashsieve::digest::detail
