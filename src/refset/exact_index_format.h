// Internal: the on-disk layout of the exact index and the helpers both the
// writer and the reader use. See exact_index.h for the layout description.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "hashsieve/refset/exact_index.h"

namespace hashsieve::refset::detail {

// The file is defined as little-endian; we store native integers with memcpy.
static_assert(std::endian::native == std::endian::little, "exact index assumes little-endian");

inline constexpr char kExactMagic[8] = {'H', 'S', 'E', 'X', 'I', 'D', 'X', '\0'};
inline constexpr std::size_t kAlign = 64;  // regions start on a cache line
inline constexpr std::size_t kKeyBytes[kExactHashTypes] = {16, 20, 32};

// Header field offsets.
inline constexpr std::size_t kOffMagic = 0;
inline constexpr std::size_t kOffVersion = 8;
inline constexpr std::size_t kOffHeaderSize = 12;
inline constexpr std::size_t kOffFileSize = 16;
inline constexpr std::size_t kOffSections = 24;
inline constexpr std::size_t kSectionDescSize = 48;
// Within a section descriptor.
inline constexpr std::size_t kSecCount = 0;
inline constexpr std::size_t kSecBits = 8;
inline constexpr std::size_t kSecRecordSize = 12;
inline constexpr std::size_t kSecRecordsOffset = 16;
inline constexpr std::size_t kSecDirOffset = 24;
inline constexpr std::size_t kSecRecordsChecksum = 32;
inline constexpr std::size_t kSecDirChecksum = 40;
inline constexpr std::size_t kOffHeaderChecksum = kOffSections + kExactHashTypes * kSectionDescSize;
static_assert(kOffHeaderChecksum + 8 == kExactIndexHeaderSize);

// Directory entries are u32, so a section holds fewer than 2^32 keys.
inline constexpr std::uint64_t kMaxSectionKeys = 0xFFFFFFFFu;
inline constexpr unsigned kMaxDirBits = 31;

inline std::uint64_t load_u64(const std::uint8_t* p) {
  std::uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}
inline std::uint32_t load_u32(const std::uint8_t* p) {
  std::uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
inline void store_u64(std::uint8_t* p, std::uint64_t v) { std::memcpy(p, &v, 8); }
inline void store_u32(std::uint8_t* p, std::uint32_t v) { std::memcpy(p, &v, 4); }

// The first 8 key bytes as a big-endian integer: orders like memcmp, and its
// top bits select the directory bucket.
inline std::uint64_t key_prefix(const std::uint8_t* key) {
  return __builtin_bswap64(load_u64(key));
}

inline std::uint64_t bucket_of(std::uint64_t prefix, unsigned bits) {
  return bits == 0 ? 0 : prefix >> (64 - bits);
}

// Smallest k with count <= 3 * 2^k: buckets hold 1.5-3 keys on average, which
// keeps a bucket within one or two cache lines while the directory costs at
// most ~2.7 bytes per key.
inline unsigned choose_dir_bits(std::uint64_t count) {
  unsigned k = 0;
  while (k < kMaxDirBits && (std::uint64_t{3} << k) < count) ++k;
  return k;
}

inline std::uint64_t align_up(std::uint64_t v) { return (v + kAlign - 1) & ~std::uint64_t{kAlign - 1}; }

// A fast streaming 64-bit checksum (XXH64-style: four multiply-rotate lanes
// over 32-byte stripes). It detects corruption, it is not a MAC.
class Checksum64 {
 public:
  void update(const std::uint8_t* p, std::size_t n) {
    total_ += n;
    if (buffered_ > 0) {
      const std::size_t take = n < 32 - buffered_ ? n : 32 - buffered_;
      std::memcpy(buf_ + buffered_, p, take);
      buffered_ += take;
      p += take;
      n -= take;
      if (buffered_ < 32) return;
      stripe(buf_);
      buffered_ = 0;
    }
    while (n >= 32) {
      stripe(p);
      p += 32;
      n -= 32;
    }
    std::memcpy(buf_, p, n);
    buffered_ = n;
  }

  std::uint64_t finish() const {
    std::uint64_t h = std::rotl(lanes_[0], 1) + std::rotl(lanes_[1], 7) +
                      std::rotl(lanes_[2], 12) + std::rotl(lanes_[3], 18);
    h ^= total_ * kP5;
    for (std::size_t i = 0; i < buffered_; ++i) h = std::rotl((h ^ buf_[i]) * kP1, 11) * kP2;
    h ^= h >> 33;
    h *= kP2;
    h ^= h >> 29;
    h *= kP3;
    h ^= h >> 32;
    return h;
  }

  static std::uint64_t of(const std::uint8_t* p, std::size_t n) {
    Checksum64 c;
    c.update(p, n);
    return c.finish();
  }

 private:
  static constexpr std::uint64_t kP1 = 0x9E3779B185EBCA87ull;
  static constexpr std::uint64_t kP2 = 0xC2B2AE3D27D4EB4Full;
  static constexpr std::uint64_t kP3 = 0x165667B19E3779F9ull;
  static constexpr std::uint64_t kP5 = 0x27D4EB2F165667C5ull;

  void stripe(const std::uint8_t* p) {
    for (int i = 0; i < 4; ++i) {
      lanes_[i] += load_u64(p + 8 * i) * kP2;
      lanes_[i] = std::rotl(lanes_[i], 31) * kP1;
    }
  }

  std::uint64_t lanes_[4] = {kP1 + kP2, kP2, 0, 0 - kP1};
  std::uint8_t buf_[32]{};
  std::size_t buffered_ = 0;
  std::uint64_t total_ = 0;
};

}  // namespace hashsieve::refset::detail
