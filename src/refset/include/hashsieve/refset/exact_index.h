// The exact-hash index of reference sets: "is this MD5/SHA-1/SHA-256 in the
// set, and with which 32-bit attribute value?" for tens of millions of keys.
//
// ExactIndexWriter builds the index with bounded memory: keys are collected in
// memory up to a budget, sorted and spilled to temporary run files, and finish()
// k-way merges the runs into one immutable file, combining the values of
// duplicate keys with a caller-supplied function.
//
// ExactIndex maps that file read-only. One section per hash type holds the
// sorted full keys, each followed by its value (key and value share a cache
// line, so a hit costs no extra miss), and a directory of 2^k bucket starts
// indexed by the top k bits of the key, with k chosen so buckets hold about
// 1.5-3 keys. A lookup is one directory read plus a scan of a few adjacent
// records. Keys are compared in full: a shared prefix never makes a hit.
//
// File layout (little-endian; offsets are from the start of the file):
//   header (kExactIndexHeaderSize bytes): magic "HSEXIDX\0", version, header
//     size, file size, three section descriptors {count, dir_bits, record_size,
//     records_offset, dir_offset, records_checksum, dir_checksum} in the order
//     MD5, SHA-1, SHA-256, then a checksum of all preceding header bytes;
//   per section, each region starting on a 64-byte boundary:
//     records: count x (key bytes, u32 value), strictly increasing keys;
//     directory: 2^dir_bits + 1 u32 entries, entry b = index of the first
//     record whose top dir_bits bits are >= b; the last entry = count.
// The file depends only on the set of (key, merged value) pairs, not on the
// order of add() calls or the number of spill runs (for a commutative and
// associative merge function).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>

#include "hashsieve/core/result.h"
#include "hashsieve/digest/crypto.h"

namespace hashsieve::refset {

enum class ExactHashType : std::uint8_t { md5 = 0, sha1 = 1, sha256 = 2 };
inline constexpr std::size_t kExactHashTypes = 3;

std::string_view to_string(ExactHashType type);

inline constexpr std::uint32_t kExactIndexVersion = 1;
inline constexpr std::size_t kExactIndexHeaderSize = 176;

// Combines the values of two equal keys. It should be commutative and
// associative: the order in which duplicates meet is unspecified.
using ExactValueMerge = std::function<std::uint32_t(std::uint32_t, std::uint32_t)>;

struct ExactIndexWriterOptions {
  // Upper bound for the in-memory run buffers (and, during finish(), the merge
  // buffers). Smaller budgets mean more, smaller run files.
  std::size_t memory_budget = std::size_t{512} << 20;
  // Where run files go; empty: std::filesystem::temp_directory_path(). Run
  // files are unlinked as soon as they are created, so nothing is left behind
  // even if the process dies.
  std::string temp_dir;
  // Empty: keep the smaller value.
  ExactValueMerge merge;
  // fsync the file and its directory before finish() returns. Scratch builds
  // (tests, benchmarks) may turn it off; the rename stays atomic either way.
  bool durable = true;
};

struct ExactIndexStats {
  std::uint64_t added = 0;                  // add() calls
  std::uint64_t counts[kExactHashTypes]{};  // distinct keys per type
  std::uint64_t duplicates = 0;             // added - sum(counts)
  std::uint64_t runs = 0;                   // run files spilled
  std::uint64_t file_bytes = 0;

  std::uint64_t total() const { return counts[0] + counts[1] + counts[2]; }
};

class ExactIndexWriter {
 public:
  explicit ExactIndexWriter(ExactIndexWriterOptions options = {});
  ExactIndexWriter(ExactIndexWriter&&) noexcept;
  ExactIndexWriter& operator=(ExactIndexWriter&&) noexcept;
  ExactIndexWriter(const ExactIndexWriter&) = delete;
  ExactIndexWriter& operator=(const ExactIndexWriter&) = delete;
  ~ExactIndexWriter();

  // May spill a run; after the first error every call returns that error.
  Status add(const digest::Md5Digest& key, std::uint32_t value);
  Status add(const digest::Sha1Digest& key, std::uint32_t value);
  Status add(const digest::Sha256Digest& key, std::uint32_t value);

  // Merges everything added into `path` (written as path + ".tmp", fsync-ed,
  // then renamed over `path`). On error nothing is left at either name. The
  // writer cannot be used afterwards.
  Result<ExactIndexStats> finish(const std::string& path);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

struct ExactIndexOpenOptions {
  // Copy the file into anonymous memory backed by transparent huge pages
  // instead of mapping the page cache. Costs a sequential read of the file at
  // open and private memory of its size; saves most TLB misses of random
  // lookups in a multi-GiB index (one 2 MiB page-table entry instead of 512).
  bool load_into_memory = false;
};

// An open, immutable index. Lookups are const, thread-safe and allocation-free.
class ExactIndex {
 public:
  // Validates the header (magic, version, checksum, file size), every section's
  // bounds, and every directory (checksum, monotonic, ends at the key count):
  // parse_error for a malformed or truncated file, integrity_error for a
  // checksum mismatch, unsupported for another version. Records are checked
  // lazily: a lookup never reads outside its section whatever the bytes say,
  // and verify() checks them in full.
  static Result<ExactIndex> open(const std::string& path, ExactIndexOpenOptions options = {});

  std::optional<std::uint32_t> find(const digest::Md5Digest& key) const;
  std::optional<std::uint32_t> find(const digest::Sha1Digest& key) const;
  std::optional<std::uint32_t> find(const digest::Sha256Digest& key) const;

  // Batched lookups: out[i] = find(keys[i]). Prefetches a few keys ahead, so
  // the memory latencies of independent lookups overlap. out.size() must be
  // at least keys.size().
  void find_many(std::span<const digest::Md5Digest> keys,
                 std::span<std::optional<std::uint32_t>> out) const;
  void find_many(std::span<const digest::Sha1Digest> keys,
                 std::span<std::optional<std::uint32_t>> out) const;
  void find_many(std::span<const digest::Sha256Digest> keys,
                 std::span<std::optional<std::uint32_t>> out) const;

  // O(n) check of the records: checksums, strictly increasing keys, each key
  // in the bucket the directory assigns it.
  Status verify() const;

  std::uint64_t count(ExactHashType type) const;
  std::uint64_t size() const;  // keys of all types
  std::uint64_t file_bytes() const;
  unsigned directory_bits(ExactHashType type) const;
  // File bytes per key (0 for an empty index).
  double bytes_per_hash() const;

  ExactIndex(ExactIndex&&) noexcept;
  ExactIndex& operator=(ExactIndex&&) noexcept;
  ExactIndex(const ExactIndex&) = delete;
  ExactIndex& operator=(const ExactIndex&) = delete;
  ~ExactIndex();

  struct Section {
    const std::uint8_t* records = nullptr;
    const std::uint8_t* dir = nullptr;  // 2^bits + 1 little-endian u32
    std::uint64_t count = 0;
    unsigned bits = 0;
    unsigned record_size = 0;
    std::uint64_t records_checksum = 0;
    std::uint64_t dir_checksum = 0;
  };

 private:
  struct Mapping;
  ExactIndex() = default;

  std::unique_ptr<Mapping> mapping_;
  std::size_t size_ = 0;
  Section sections_[kExactHashTypes];
};

}  // namespace hashsieve::refset
