// Cryptographic digests and CRC32 of a file in one read pass: the fields of an
// NSRL RDS record (MD5, SHA-1, SHA-256, CRC32).
//
// The digest values are small regular types meant to be used as keys of
// reference-set indexes: comparable, hashable, printable as lowercase hex.
// MultiHasher feeds one byte stream to every selected algorithm. When two or
// more of MD5/SHA-1/SHA-256 (or MD5 alone) are selected and the CPU has the SHA
// extensions and PCLMULQDQ, it runs a fused kernel that interleaves one MD5
// block with one SHA-1 and one SHA-256 block (and the CRC-32 folding) so the
// out-of-order core overlaps MD5's serial dependency chain with the SHA-NI
// instructions; otherwise it uses OpenSSL's EVP digests and a separate CRC
// pass. Both paths give identical results (the tests compare them).
#pragma once

#include <array>
#include <bit>
#include <cassert>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <initializer_list>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "hashsieve/core/result.h"

namespace hashsieve::digest {

// Name and version of the hasher, for cache keys and result provenance.
inline constexpr std::string_view kCryptoHasherName = "crypto";
inline constexpr std::string_view kCryptoHasherVersion = "1";

// A fixed-size binary digest (MD5, SHA-1, SHA-256). Printed as lowercase hex,
// the form of md5sum/sha1sum/sha256sum; parsed from either case.
template <std::size_t N>
class HashDigest {
 public:
  static constexpr std::size_t kBytes = N;
  static constexpr std::size_t kHexDigits = 2 * N;

  HashDigest() = default;  // all zero
  explicit HashDigest(const std::array<std::uint8_t, N>& bytes) : bytes_(bytes) {}
  // Copies exactly N bytes from `bytes`, which must hold at least N.
  static HashDigest from_bytes(std::span<const std::uint8_t> bytes) {
    assert(bytes.size() >= N);
    HashDigest d;
    std::memcpy(d.bytes_.data(), bytes.data(), N);
    return d;
  }

  // Accepts exactly 2*N hex digits, upper or lower case, nothing else (no
  // whitespace, no "0x"): index keys must have a single spelling.
  static Result<HashDigest> parse_hex(std::string_view text);

  std::string hex() const;
  const std::array<std::uint8_t, N>& bytes() const { return bytes_; }

  auto operator<=>(const HashDigest&) const = default;
  bool operator==(const HashDigest&) const = default;

 private:
  std::array<std::uint8_t, N> bytes_{};
};

using Md5Digest = HashDigest<16>;
using Sha1Digest = HashDigest<20>;
using Sha256Digest = HashDigest<32>;

extern template class HashDigest<16>;
extern template class HashDigest<20>;
extern template class HashDigest<32>;

// CRC-32 as zlib, PKZIP and NSRL compute it (IEEE 802.3 polynomial, reflected,
// initial and final XOR 0xFFFFFFFF). Printed as 8 UPPERCASE hex digits, the
// spelling of the NSRL RDS CRC32 column, so exported values compare textually
// with NSRL data; parsed from either case.
class Crc32 {
 public:
  Crc32() = default;
  explicit constexpr Crc32(std::uint32_t value) : value_(value) {}

  static Result<Crc32> parse_hex(std::string_view text);
  std::string hex() const;
  std::uint32_t value() const { return value_; }

  auto operator<=>(const Crc32&) const = default;
  bool operator==(const Crc32&) const = default;

 private:
  std::uint32_t value_ = 0;
};

enum class CryptoAlgorithm : std::uint8_t { md5, sha1, sha256, crc32 };

std::string_view to_string(CryptoAlgorithm algorithm);

// A set of CryptoAlgorithm values.
class CryptoSelection {
 public:
  constexpr CryptoSelection() = default;
  constexpr CryptoSelection(std::initializer_list<CryptoAlgorithm> algorithms) {
    for (CryptoAlgorithm a : algorithms) bits_ |= bit(a);
  }
  static constexpr CryptoSelection none() { return {}; }
  static constexpr CryptoSelection all() {
    return {CryptoAlgorithm::md5, CryptoAlgorithm::sha1, CryptoAlgorithm::sha256,
            CryptoAlgorithm::crc32};
  }
  // The set whose members are the set bits of `mask` (bit i = algorithm i);
  // handy for enumerating every subset.
  static constexpr CryptoSelection from_mask(unsigned mask) {
    CryptoSelection s;
    s.bits_ = static_cast<std::uint8_t>(mask & 0xF);
    return s;
  }

  constexpr bool contains(CryptoAlgorithm a) const { return (bits_ & bit(a)) != 0; }
  constexpr bool empty() const { return bits_ == 0; }
  constexpr int count() const { return std::popcount(bits_); }
  constexpr unsigned mask() const { return bits_; }
  constexpr CryptoSelection with(CryptoAlgorithm a) const {
    CryptoSelection s = *this;
    s.bits_ |= bit(a);
    return s;
  }
  constexpr CryptoSelection operator|(CryptoSelection other) const {
    return from_mask(bits_ | other.bits_);
  }
  constexpr bool operator==(const CryptoSelection&) const = default;

 private:
  static constexpr std::uint8_t bit(CryptoAlgorithm a) {
    return static_cast<std::uint8_t>(1u << static_cast<unsigned>(a));
  }
  std::uint8_t bits_ = 0;
};

// The result of a pass: a value for each selected algorithm, nullopt for the
// others, and the number of bytes hashed.
struct CryptoDigests {
  std::optional<Md5Digest> md5;
  std::optional<Sha1Digest> sha1;
  std::optional<Sha256Digest> sha256;
  std::optional<Crc32> crc32;
  std::uint64_t size = 0;

  bool operator==(const CryptoDigests&) const = default;
};

// Which implementation MultiHasher runs.
enum class CryptoBackend {
  automatic,  // fused kernel when it helps and the CPU supports it, else EVP
  evp,        // OpenSSL EVP for every algorithm: the reference path
  fused,      // fused kernel if the CPU supports it (else EVP); for tests/benches
};

// True when this CPU can run the fused SHA-NI kernel.
bool crypto_fused_kernel_supported();

class MultiHasher {
 public:
  explicit MultiHasher(CryptoSelection selection,
                       CryptoBackend backend = CryptoBackend::automatic);
  MultiHasher(MultiHasher&&) noexcept;
  MultiHasher& operator=(MultiHasher&&) noexcept;
  MultiHasher(const MultiHasher&) = delete;
  MultiHasher& operator=(const MultiHasher&) = delete;
  ~MultiHasher();

  CryptoSelection selection() const;
  // The backend actually in use for MD5/SHA-1/SHA-256 (never `automatic`).
  CryptoBackend backend() const;

  void update(std::span<const std::uint8_t> data);
  // Returns the digests of everything fed since construction or the previous
  // finish(), and resets the hasher so it can be reused for the next input.
  CryptoDigests finish();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Hashes the regular file at `path`, reading it once in chunks. Errors carry
// the path: not_found, permission_denied, invalid_argument (a directory),
// unsupported (not a regular file), io_error.
Result<CryptoDigests> hash_file(const std::string& path, CryptoSelection selection,
                                CryptoBackend backend = CryptoBackend::automatic);

}  // namespace hashsieve::digest

// Digests are uniformly distributed, so their leading bytes already are a good
// hash; no mixing needed.
template <std::size_t N>
struct std::hash<hashsieve::digest::HashDigest<N>> {
  std::size_t operator()(const hashsieve::digest::HashDigest<N>& d) const noexcept {
    static_assert(N >= sizeof(std::size_t));
    std::size_t h;
    std::memcpy(&h, d.bytes().data(), sizeof h);
    return h;
  }
};

template <>
struct std::hash<hashsieve::digest::Crc32> {
  std::size_t operator()(const hashsieve::digest::Crc32& c) const noexcept {
    return std::hash<std::uint32_t>{}(c.value());
  }
};
