// SHA-1 of exactly one 64-byte SDBF feature window (spec section 4).
// Internal to the digest module.
//
// A 64-byte message is always two compression blocks: the data and a constant
// padding block. The SHA-NI path hashes that with intrinsics, no EVP setup per
// call, and can run two independent features interleaved to hide the latency
// of the round instructions.
#pragma once

#include <cstdint>

namespace hashsieve::digest {

inline constexpr std::size_t kSdbfFeatureBytes = 64;
inline constexpr std::size_t kSha1DigestBytes = 20;

// True when the CPU has SHA-NI and SSE4.1 (checked once).
bool sha1_feature_has_shani();

// Writes the 20-byte SHA-1 digest of msg[0..63] to out. Dispatches to SHA-NI
// when available, else to the portable path.
void sha1_feature(const std::uint8_t* msg, std::uint8_t* out);
// Two independent features at once (out_a/out_b as for sha1_feature).
void sha1_feature_x2(const std::uint8_t* msg_a, const std::uint8_t* msg_b, std::uint8_t* out_a,
                     std::uint8_t* out_b);

// Four independent features at once: four interleaved round chains keep the
// SHA-NI units busier than two (stream mode hashes every candidate in order,
// so it can always batch four).
void sha1_feature_x4(const std::uint8_t* const (&msg)[4], std::uint8_t* const (&out)[4]);

// The implementations, exposed so tests can check they agree. The SHA-NI ones
// must only be called when sha1_feature_has_shani() is true.
void sha1_feature_portable(const std::uint8_t* msg, std::uint8_t* out);
void sha1_feature_shani(const std::uint8_t* msg, std::uint8_t* out);
void sha1_feature_x2_shani(const std::uint8_t* msg_a, const std::uint8_t* msg_b,
                           std::uint8_t* out_a, std::uint8_t* out_b);
void sha1_feature_x4_shani(const std::uint8_t* const (&msg)[4], std::uint8_t* const (&out)[4]);

}  // namespace hashsieve::digest
