// The sub-linear similarity index of a reference set (docs/adr/0004).
//
// SDBF: an SDBF digest keeps Bloom filters only, so the index does not look
// at them. Instead `refset build` (which has every file's bytes) samples
// content keys: a 64-byte gear rolling hash over the file, keeping the
// windows whose mixed hash has its top `shift` bits zero. The rate 2^-shift
// depends on the file's length (about kContentKeysTarget keys per file,
// 1/8 .. 1/64 of the positions); because the rule is "top bits zero", the
// keys kept at a coarse rate are a subset of those kept at a finer one, so a
// query and a reference share every window kept at the coarser of their two
// rates. Files that share content (the only way two SDBF digests score well:
// SDBF features are 64-byte windows too) share keys, wherever the content sits.
// Postings map key -> SDBF entry ids; keys held by more than
// kMaxPostingLength entries (padding, runtime boilerplate) are dropped.
//
// TLSH: each of the 128 two-bit body codes gives one bit (code >= 2, i.e.
// above the median quartile); the bits are grouped into kTlshTables groups of
// 16 (eight fixed pseudo-random partitions of the 128 positions), and each
// group's 16-bit value is a key. References sharing at least one group value
// with the query are candidates. Close pairs differ mostly by codes one step
// apart, which flip a bit only across the median, so they rarely differ in
// all 64 groups; unrelated pairs share a group by chance (1 in 65,536).
// Keys also carry the length band (L value / 16): a reference more than
// kTlshMaxLengthDiff length classes away is farther than the indexed
// distance for its length alone, so a query probes the (one or two) bands
// within that range only.
//
// Either way the index only proposes candidates; callers score them exactly
// (sdbf_score, tlsh_distance), so a hit list never holds anything brute force
// would not, and recall is measured against brute force
// (src/refset/tests/similarity_index_test.cpp, bench/similarity_bench.cpp).
//
// On disk: one immutable file, `similarity.idx`, in the set's version
// directory (layout in similarity_index.cpp), written at build time and
// mmap-ed at load. open() checks every bound and invariant, so a corrupt or
// truncated file is a parse_error naming the file, never a crash.
//
// Thread safety: a SimilarityIndex is immutable after open(); candidate
// queries are const and may run concurrently (scratch space is thread-local).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "hashsieve/core/file.h"
#include "hashsieve/core/result.h"
#include "hashsieve/digest/tlsh.h"

namespace hashsieve::refset {

inline constexpr std::size_t kContentKeysTarget = 64;
inline constexpr unsigned kContentMinShift = 3;   // at most 1 key per 8 bytes (small files)
inline constexpr unsigned kContentMaxShift = 6;   // at least 1 key per 64 bytes (large files)
inline constexpr std::size_t kTlshTables = 64;
inline constexpr std::uint32_t kMaxPostingLength = 4096;
// Candidates must share this many content keys with the query. One shared
// 32-bit key is often a collision at a million references (a few percent of
// a large query's keys collide with some reference's); a real shared region
// gives several.
inline constexpr unsigned kSdbfMinSharedKeys = 2;
// TLSH candidates share this many group values with the query. Two would
// cut the ~600 candidates per query at 1 M references to ~8 (p50 27 us
// instead of ~90 us) but lose close pairs: recall 99.1 % on the bench and
// 97.0 % on the unit-test corpus, below the 99 % goal.
inline constexpr unsigned kTlshMinSharedGroups = 1;
// TLSH group values held by more references than this are not read at query
// time. At 1 M references a cap of 64 bounded the slowest query (0.5 ms
// instead of 4 ms) at the same recall, but in small sets a family of close
// files shares group values more often than that, so the default reads
// every posting the index kept (kMaxPostingLength).
inline constexpr std::uint32_t kTlshMaxPostingRead = kMaxPostingLength;
inline constexpr unsigned kTlshBandShift = 4;
// TLSH distance counts 12 per length class beyond the first, so a pair more
// than 5 classes apart is farther than 60 (kTlshIndexedMaxDistance, catalog.h).
inline constexpr std::uint32_t kTlshMaxLengthDiff = 5;
// tlsh_candidates drops references farther than this (by the digests kept
// in the index) unless told otherwise: the largest distance the index is
// used for (kTlshIndexedMaxDistance, catalog.h).
inline constexpr int kTlshCandidateMaxDistance = 60;

// The sampled content keys of a file's bytes, sorted and unique. Computed
// once per file by `refset build` for every reference and by a scan (or
// `refset lookup`) for every query: pass them in SimilarityQuery. Costs one
// pass over the bytes (about 1 GB/s).
std::vector<std::uint32_t> sample_content_keys(std::span<const std::uint8_t> data);

// The TLSH group keys of a reference digest (kTlshTables of them, in its
// own length band), and the keys a query probes (its groups in every band
// within kTlshMaxLengthDiff length classes).
std::vector<std::uint32_t> tlsh_group_keys(const digest::TlshDigest& digest);
std::vector<std::uint32_t> tlsh_probe_keys(const digest::TlshDigest& digest);

// Collects postings and writes similarity.idx. Entry ids are the positions
// of the SDBF digests in similarity.sdbf and of the TLSH lines in
// similarity.tlsh.
class SimilarityIndexWriter {
 public:
  void add_sdbf(std::uint32_t entry, std::span<const std::uint32_t> content_keys);
  void add_tlsh(std::uint32_t entry, const digest::TlshDigest& digest);
  // Writes the index for `sdbf_entries` SDBF and `tlsh_entries` TLSH entries.
  Status write(const std::string& path, std::uint32_t sdbf_entries, std::uint32_t tlsh_entries);

 private:
  std::vector<std::uint64_t> sdbf_;  // key << 32 | entry
  std::vector<std::uint64_t> tlsh_;
  std::vector<std::pair<std::uint32_t, digest::TlshDigest>> tlsh_digests_;  // entry, digest
};

class SimilarityIndex {
 public:
  static Result<SimilarityIndex> open(const std::string& path);

  std::uint32_t sdbf_entries() const;
  std::uint32_t tlsh_entries() const;
  // Entries sharing at least `min_shared` of the given sorted, unique
  // content keys, in ascending order (replaces `out`).
  void sdbf_candidates(std::span<const std::uint32_t> content_keys, std::vector<std::uint32_t>& out,
                       unsigned min_shared = kSdbfMinSharedKeys) const;
  // TLSH entries sharing at least `min_shared` group keys with `query` (in
  // a length band it probes) whose digest (as stored in the index) is
  // within `max_distance` of `query` by tlsh_distance, ascending. Group
  // values held by more than `max_posting` references are not read. Costs
  // no entries-sized scratch: the posting ids are gathered and radix-sorted.
  void tlsh_candidates(const digest::TlshDigest& query, std::vector<std::uint32_t>& out,
                       unsigned min_shared = kTlshMinSharedGroups, std::uint32_t max_posting = kTlshMaxPostingRead,
                       int max_distance = kTlshCandidateMaxDistance) const;
  std::uint64_t file_bytes() const;

  SimilarityIndex(SimilarityIndex&&) noexcept;
  SimilarityIndex& operator=(SimilarityIndex&&) noexcept;
  ~SimilarityIndex();

 private:
  struct Data;
  explicit SimilarityIndex(std::unique_ptr<Data> data);
  std::unique_ptr<Data> data_;
};

}  // namespace hashsieve::refset
