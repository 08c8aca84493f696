// TLSH locality-sensitive digests, identical to Debian's libtlsh 3.4.4 in its
// default build (128 buckets, 1-byte checksum, 70 hex characters).
//
// A TlshDigest is a 35-byte value: checksum, length class (L value), the two
// quartile ratios and a 32-byte body of 2-bit bucket codes. TlshHasher builds
// one from a byte stream; tlsh_distance compares two as Tlsh::totalDiff does.
// This is our own implementation (no libtlsh dependency); tests check it
// byte for byte against libtlsh and the `tlsh` CLI.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "hashsieve/core/result.h"

namespace hashsieve::digest {

// Name and version of the generator, for cache keys and result provenance.
inline constexpr std::string_view kTlshHasherName = "tlsh";
inline constexpr std::string_view kTlshHasherVersion = "tlsh-3.4.4-compatible/1";

inline constexpr std::size_t kTlshBodyBytes = 32;
// Hex characters of the digest as libtlsh 3.4.4 prints it (no "T1" prefix).
inline constexpr std::size_t kTlshHexChars = 70;
// libtlsh 3.4.4 (MIN_DATA_LENGTH) gives no digest for shorter inputs.
inline constexpr std::uint64_t kTlshMinInputBytes = 256;

class TlshDigest {
 public:
  // Accepts "T1" + 70 hex characters (the modern text form) or the bare 70
  // hex characters libtlsh 3.4.4 prints; hex digits in either case. Anything
  // else is a parse_error.
  static Result<TlshDigest> parse(std::string_view text);

  // Builds a digest from its fields. Ratios are 4-bit values (masked).
  static TlshDigest from_fields(std::uint8_t checksum, std::uint8_t lvalue, std::uint8_t q1_ratio,
                                std::uint8_t q2_ratio,
                                const std::array<std::uint8_t, kTlshBodyBytes>& body);

  // "T1" followed by the 70 upper-case hex characters libtlsh 3.4.4 prints.
  std::string to_string() const;
  // The 70 hex characters alone, exactly as libtlsh 3.4.4's getHash().
  std::string to_hex() const;

  std::uint8_t checksum() const { return checksum_; }
  // Logarithmic length class of the input, 0..255.
  std::uint8_t lvalue() const { return lvalue_; }
  // (q1 * 100 / q3) mod 16 and (q2 * 100 / q3) mod 16.
  std::uint8_t q1_ratio() const { return q1_ratio_; }
  std::uint8_t q2_ratio() const { return q2_ratio_; }
  // Body in bucket order: byte i holds buckets 4i..4i+3, bucket 4i+j in bits
  // 2j..2j+1. (The hex form prints these bytes last-first.)
  const std::array<std::uint8_t, kTlshBodyBytes>& body() const { return body_; }

  bool operator==(const TlshDigest& other) const = default;

 private:
  TlshDigest() = default;

  std::uint8_t checksum_ = 0;
  std::uint8_t lvalue_ = 0;
  std::uint8_t q1_ratio_ = 0;
  std::uint8_t q2_ratio_ = 0;
  std::array<std::uint8_t, kTlshBodyBytes> body_{};
};

// Which byte loop a TlshHasher runs. Both give identical digests; `portable`
// exists so tests and benchmarks can exercise the scalar loop on machines
// where `best` picks the AVX-512 VBMI one.
enum class TlshKernel { best, portable };

// Streaming TLSH generator. Feed bytes with update() in pieces of any size;
// the result does not depend on how the input was split.
class TlshHasher {
 public:
  explicit TlshHasher(TlshKernel kernel = TlshKernel::best)
      : force_scalar_(kernel == TlshKernel::portable) {
    reset();
  }

  // True when TlshKernel::best uses the AVX-512 VBMI loop on this machine.
  static bool vector_kernel_available();

  void update(std::span<const std::uint8_t> data);

  // The digest of everything fed since construction or the last reset(), or
  // nullopt where libtlsh 3.4.4 gives none: fewer than 256 bytes, or at most
  // half of the 128 buckets non-empty (too little variation). Does not change
  // the state; call reset() to hash another input.
  //
  // libtlsh counts the length in 32 bits; for inputs of 4 GiB or more it has
  // no meaningful reference result, and we clamp the length to 2^32-1.
  std::optional<TlshDigest> finish() const;

  void reset();

  // One-shot convenience: the digest of `data` alone.
  static std::optional<TlshDigest> digest_of(std::span<const std::uint8_t> data);

  std::uint64_t bytes_seen() const { return length_; }

 private:
  // Bucket counts, in kHistogramCopies copies of 256 that finish() sums (the
  // vector path rotates over them so runs of one bucket do not serialise).
  // Counts wrap modulo 2^32 exactly as libtlsh's unsigned ints do. Only
  // buckets 0..127 feed the digest, but the Pearson hash yields 0..255;
  // counting all 256 avoids a branch per increment.
  static constexpr std::size_t kHistogramCopies = 4;
  std::array<std::uint32_t, 256 * kHistogramCopies> counts_;
  std::uint64_t length_;
  // The previous four input bytes, most recent first (window_[0] = x[n-1]).
  std::array<std::uint8_t, 4> window_;
  std::uint8_t checksum_;
  bool force_scalar_;
};

// The L value libtlsh 3.4.4 gives an input of `length` bytes (its
// l_capturing): a logarithmic length class, 0..255. Exposed for indexes that
// pre-filter by length.
std::uint8_t tlsh_length_class(std::uint32_t length);

// Distance between two digests, identical to libtlsh 3.4.4's
// Tlsh::totalDiff(other, include_length). 0 means identical digests; the
// scale is open-ended (values above ~300 mean unrelated).
int tlsh_distance(const TlshDigest& a, const TlshDigest& b, bool include_length = true);

// tlsh_distance is the sum of these two parts, exactly. The header part
// (length class, quartile ratios, checksum) alone is a lower bound of the
// distance that needs 4 bytes per digest: the similarity index keeps it
// beside its postings to drop most candidates before reading their bodies.
int tlsh_header_distance(const TlshDigest& a, const TlshDigest& b, bool include_length = true);
// Distance between two bodies (libtlsh's h_distance), in the body() layout.
int tlsh_body_distance(const std::array<std::uint8_t, kTlshBodyBytes>& a,
                       const std::array<std::uint8_t, kTlshBodyBytes>& b);

}  // namespace hashsieve::digest
