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
// RFC 1321 A..D).
struct FusedState {
  std::uint32_t md5[4];
  std::uint32_t sha1[5];
  std::uint32_t sha256[8];
};

void fused_init(FusedState& state);

// True when the CPU has SHA-NI and SSE4.1 (checked once).
bool fused_supported();

// Compresses `blocks` 64-byte blocks at `data` into the selected states, with
// the three algorithms' rounds interleaved. Requires fused_supported().
void fused_compress(FusedState& state, bool md5, bool sha1, bool sha256,
                    const std::uint8_t* data, std::size_t blocks);

// CRC-32 (zlib's) continuation: crc32_update(0, ...) starts a new CRC.
// The dispatcher picks PCLMULQDQ folding when available.
std::uint32_t crc32_update(std::uint32_t crc, std::span<const std::uint8_t> data);
std::uint32_t crc32_update_portable(std::uint32_t crc, std::span<const std::uint8_t> data);
// Requires crc32_clmul_supported().
std::uint32_t crc32_update_clmul(std::uint32_t crc, std::span<const std::uint8_t> data);
bool crc32_clmul_supported();

}  // namespace hashsieve::digest::detail
