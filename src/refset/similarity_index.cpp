#include "hashsieve/refset/similarity_index.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cstring>
#include <fstream>
#include <limits>
#include <optional>

namespace hashsieve::refset {
namespace {

// similarity.idx, all integers little-endian:
//   0   char[8] "HSSIMIDX"
//   8   u32 format version (1)
//   12  u32 sampling version (3: gear-64 windows, top-bits rule, shifts 3..6;
//       TLSH median-bit groups in length bands of 16 classes)
//   16  u32 SDBF entries        20  u32 TLSH entries
//   24  table descriptor SDBF   48  table descriptor TLSH    (24 bytes each:
//       u32 dir_bits, u32 keys, u32 ids, u32 reserved, u64 offset)
//   72..127 reserved (zero)
// A table at `offset` (4-byte aligned) is four u32 arrays back to back:
//   dir[2^dir_bits + 1]   first key index of each top-bits bucket
//   keys[keys]            strictly ascending
//   starts[keys + 1]      first id index of each key's postings
//   ids[ids]              entry ids, ascending within a key
constexpr char kMagic[8] = {'H', 'S', 'S', 'I', 'M', 'I', 'D', 'X'};
constexpr std::uint32_t kFormatVersion = 1;
constexpr std::uint32_t kSamplingVersion = 3;
constexpr std::size_t kHeaderBytes = 128;
constexpr std::size_t kDescOffset[2] = {24, 48};
constexpr std::uint32_t kMaxDirBits = 24;

constexpr std::uint64_t splitmix64(std::uint64_t& state) {
  std::uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

constexpr std::array<std::uint64_t, 256> make_gear() {
  std::array<std::uint64_t, 256> g{};
  std::uint64_t state = 0x68617368736965ULL;  // "hashsie"
  for (auto& v : g) v = splitmix64(state);
  return g;
}
constexpr auto kGear = make_gear();

// kTlshTables / 8 pseudo-random partitions of the 128 TLSH body positions
// into 8 groups of 16: group t covers positions kTlshGroups[t][0..15].
constexpr std::array<std::array<std::uint8_t, 16>, kTlshTables> make_tlsh_groups() {
  std::array<std::array<std::uint8_t, 16>, kTlshTables> groups{};
  std::uint64_t state = 0x746c7368ULL;  // "tlsh"
  constexpr std::size_t kPartitions = kTlshTables / 8;
  for (std::size_t p = 0; p < kPartitions; ++p) {
    std::array<std::uint8_t, 128> perm{};
    for (std::size_t i = 0; i < 128; ++i) perm[i] = static_cast<std::uint8_t>(i);
    for (std::size_t i = 127; i > 0; --i) {
      const std::size_t j = splitmix64(state) % (i + 1);
      std::swap(perm[i], perm[j]);
    }
    for (std::size_t g = 0; g < 8; ++g) {
      for (std::size_t k = 0; k < 16; ++k) groups[p * 8 + g][k] = perm[g * 16 + k];
    }
  }
  return groups;
}
constexpr auto kTlshGroups = make_tlsh_groups();

// Bijective 32-bit finaliser (murmur3): distinct inputs stay distinct keys.
std::uint32_t fmix32(std::uint32_t h) {
  h ^= h >> 16;
  h *= 0x85EBCA6BU;
  h ^= h >> 13;
  h *= 0xC2B2AE35U;
  h ^= h >> 16;
  return h;
}

std::uint32_t load_u32(const std::uint8_t* p) {
  std::uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
std::uint64_t load_u64(const std::uint8_t* p) {
  std::uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

std::uint32_t bucket_of(std::uint32_t key, std::uint32_t bits) { return bits == 0 ? 0 : key >> (32 - bits); }

// One postings table as written: sorted (key << 32 | entry) pairs in,
// arrays out; keys with more than kMaxPostingLength entries are dropped.
struct TableArrays {
  std::uint32_t bits = 0;
  std::vector<std::uint32_t> dir, keys, starts, ids;
};

TableArrays build_table(std::vector<std::uint64_t>& pairs) {
  std::sort(pairs.begin(), pairs.end());
  pairs.erase(std::unique(pairs.begin(), pairs.end()), pairs.end());
  TableArrays t;
  t.starts.push_back(0);
  for (std::size_t i = 0; i < pairs.size();) {
    const auto key = static_cast<std::uint32_t>(pairs[i] >> 32);
    std::size_t j = i;
    while (j < pairs.size() && static_cast<std::uint32_t>(pairs[j] >> 32) == key) ++j;
    if (j - i <= kMaxPostingLength) {
      t.keys.push_back(key);
      for (std::size_t k = i; k < j; ++k) t.ids.push_back(static_cast<std::uint32_t>(pairs[k]));
      t.starts.push_back(static_cast<std::uint32_t>(t.ids.size()));
    }
    i = j;
  }
  while (t.bits < kMaxDirBits && (std::size_t{1} << t.bits) * 2 < t.keys.size()) ++t.bits;
  const std::size_t buckets = std::size_t{1} << t.bits;
  t.dir.resize(buckets + 1);
  std::size_t k = 0;
  for (std::size_t b = 0; b <= buckets; ++b) {
    while (k < t.keys.size() && bucket_of(t.keys[k], t.bits) < b) ++k;
    t.dir[b] = static_cast<std::uint32_t>(k);
  }
  return t;
}

// A postings table as mapped from the file.
struct PostingsTable {
  std::uint32_t bits = 0, nkeys = 0, nids = 0;
  const std::uint32_t* dir = nullptr;
  const std::uint32_t* keys = nullptr;
  const std::uint32_t* starts = nullptr;
  const std::uint32_t* ids = nullptr;
};

// Visits the postings of many keys. At a million references every step of a
// lookup (directory, key, postings start, ids) is a cache miss, so the keys
// go through each step in batches with the next step's line prefetched: the
// misses of a batch overlap instead of queueing.
template <typename Visit>
void for_each_posting(const PostingsTable& t, std::span<const std::uint32_t> keys, std::uint32_t max_posting,
                      Visit&& visit) {
  if (t.nkeys == 0) return;
  constexpr std::size_t kBatch = 32;
  std::array<std::uint32_t, kBatch> lo{}, hi{}, found{};
  for (std::size_t base = 0; base < keys.size(); base += kBatch) {
    const std::size_t n = std::min(kBatch, keys.size() - base);
    for (std::size_t i = 0; i < n; ++i) __builtin_prefetch(t.dir + bucket_of(keys[base + i], t.bits));
    for (std::size_t i = 0; i < n; ++i) {
      const std::uint32_t b = bucket_of(keys[base + i], t.bits);
      lo[i] = t.dir[b];
      hi[i] = t.dir[b + 1];
      __builtin_prefetch(t.keys + lo[i]);
    }
    for (std::size_t i = 0; i < n; ++i) {
      const std::uint32_t* it = std::lower_bound(t.keys + lo[i], t.keys + hi[i], keys[base + i]);
      found[i] = (it != t.keys + hi[i] && *it == keys[base + i]) ? static_cast<std::uint32_t>(it - t.keys) : ~0u;
      if (found[i] != ~0u) __builtin_prefetch(t.starts + found[i]);
    }
    for (std::size_t i = 0; i < n; ++i) {
      if (found[i] == ~0u) continue;
      lo[i] = t.starts[found[i]];
      hi[i] = t.starts[found[i] + 1];
      if (hi[i] - lo[i] > max_posting) {
        found[i] = ~0u;
        continue;
      }
      __builtin_prefetch(t.ids + lo[i]);
    }
    for (std::size_t i = 0; i < n; ++i) {
      if (found[i] == ~0u) continue;
      for (std::uint32_t p = lo[i]; p < hi[i]; ++p) visit(t.ids[p]);
    }
  }
}

// Per-thread scratch for de-duplicating candidates without clearing an
// entries-sized array per query: a slot is "seen" when its stamp is the
// current epoch.
struct CandidateScratch {
  std::vector<std::uint32_t> stamp;
  std::vector<std::uint16_t> count;
  std::uint32_t epoch = 0;

  void begin(std::size_t entries) {
    if (stamp.size() < entries) {
      stamp.assign(entries, 0);
      count.assign(entries, 0);
      epoch = 0;
    }
    if (++epoch == 0) {
      std::fill(stamp.begin(), stamp.end(), 0);
      epoch = 1;
    }
  }
};

thread_local CandidateScratch t_scratch;

// Sorts entry ids below `entries`. Up to 2^22 entries: a two-pass LSD radix
// sort on 11-bit digits (about 4 us for the ~1,000 ids of a TLSH query, a
// quarter of std::sort's time, which is mostly mispredicted branches).
void sort_ids(std::vector<std::uint32_t>& ids, std::uint32_t entries) {
  constexpr unsigned kDigit = 11;
  constexpr std::uint32_t kBuckets = 1u << kDigit;
  if (entries > (1u << (2 * kDigit)) || ids.size() < 64) {
    std::sort(ids.begin(), ids.end());
    return;
  }
  thread_local std::vector<std::uint32_t> tmp;
  tmp.resize(ids.size());
  std::array<std::uint32_t, kBuckets> lo{}, hi{};
  for (const auto id : ids) {
    ++lo[id & (kBuckets - 1)];
    ++hi[id >> kDigit];
  }
  std::uint32_t sum_lo = 0, sum_hi = 0;
  for (std::uint32_t b = 0; b < kBuckets; ++b) {
    const std::uint32_t l = lo[b], h = hi[b];
    lo[b] = sum_lo;
    hi[b] = sum_hi;
    sum_lo += l;
    sum_hi += h;
  }
  for (const auto id : ids) tmp[lo[id & (kBuckets - 1)]++] = id;
  for (const auto id : tmp) ids[hi[id >> kDigit]++] = id;
}

}  // namespace

std::vector<std::uint32_t> sample_content_keys(std::span<const std::uint8_t> data) {
  std::vector<std::uint32_t> keys;
  const std::size_t n = data.size();
  if (n < 64) return keys;
  unsigned shift = kContentMinShift;
  while (shift < kContentMaxShift && (n >> (shift + 1)) >= kContentKeysTarget) ++shift;
  keys.reserve((n >> shift) + 16);
  std::uint64_t h = 0;
  const std::uint64_t mask = ~std::uint64_t{0} << (64 - shift);
  for (std::size_t i = 0; i < n; ++i) {
    // Each step shifts older bytes one bit further out: after 64 steps a byte
    // no longer counts, so h depends on the 64-byte window ending at i, and
    // its top bits on (nearly) all of it. Testing them is the whole per-byte
    // cost; the key is mixed only for the sampled windows.
    h = (h << 1) + kGear[data[i]];
    if ((h & mask) != 0 || i < 63) continue;
    std::uint64_t m = h ^ (h >> 29);
    m *= 0xFF51AFD7ED558CCDULL;
    m ^= m >> 32;
    // Windows of one to three byte values (padding, fill patterns) carry no
    // SDBF features either; they would only make every padded file a candidate.
    std::array<std::uint64_t, 4> seen{};
    unsigned distinct = 0;
    for (std::size_t k = i - 63; k <= i && distinct < 4; ++k) {
      const std::uint8_t b = data[k];
      const std::uint64_t bit = std::uint64_t{1} << (b & 63);
      if ((seen[b >> 6] & bit) == 0) {
        seen[b >> 6] |= bit;
        ++distinct;
      }
    }
    if (distinct >= 4) keys.push_back(static_cast<std::uint32_t>(m));
  }
  std::sort(keys.begin(), keys.end());
  keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
  return keys;
}

namespace {

// The group keys of `digest` in length band `band`.
void append_tlsh_keys(const digest::TlshDigest& digest, std::uint32_t band, std::vector<std::uint32_t>& keys) {
  const auto& body = digest.body();
  for (std::size_t t = 0; t < kTlshTables; ++t) {
    // One bit per position: is the code in the upper half (2 or 3)? Codes
    // are quartiles, so the bit is balanced (a good key), and the usual
    // difference of a close pair, a code one step off, flips it only when
    // the step crosses the median (1 <-> 2).
    std::uint32_t value = 0;
    for (const std::uint8_t pos : kTlshGroups[t]) value = (value << 1) | ((body[pos / 4] >> (2 * (pos % 4) + 1)) & 1u);
    keys.push_back(fmix32(static_cast<std::uint32_t>(t << 20) | (band << 16) | value));
  }
}

constexpr std::uint32_t tlsh_band(std::uint32_t lvalue) { return (lvalue & 255u) >> kTlshBandShift; }

}  // namespace

std::vector<std::uint32_t> tlsh_group_keys(const digest::TlshDigest& digest) {
  std::vector<std::uint32_t> keys;
  keys.reserve(kTlshTables);
  append_tlsh_keys(digest, tlsh_band(digest.lvalue()), keys);
  return keys;
}

std::vector<std::uint32_t> tlsh_probe_keys(const digest::TlshDigest& digest) {
  // A reference farther than kTlshMaxLengthDiff length classes costs more
  // than the indexed distance for its length alone; the (circular) range of
  // classes within it spans at most two bands.
  std::vector<std::uint32_t> keys;
  keys.reserve(2 * kTlshTables);
  const std::uint32_t lo = tlsh_band(digest.lvalue() + 256u - kTlshMaxLengthDiff);
  const std::uint32_t hi = tlsh_band(digest.lvalue() + kTlshMaxLengthDiff);
  append_tlsh_keys(digest, lo, keys);
  if (hi != lo) append_tlsh_keys(digest, hi, keys);
  // Between lo and hi there is no third band: bands are wider than the range.
  static_assert((1u << kTlshBandShift) > 2 * kTlshMaxLengthDiff);
  return keys;
}

void SimilarityIndexWriter::add_sdbf(std::uint32_t entry, std::span<const std::uint32_t> content_keys) {
  for (const auto k : content_keys) sdbf_.push_back(std::uint64_t{k} << 32 | entry);
}

void SimilarityIndexWriter::add_tlsh(std::uint32_t entry, const digest::TlshDigest& digest) {
  for (const auto k : tlsh_group_keys(digest)) tlsh_.push_back(std::uint64_t{k} << 32 | entry);
}

Status SimilarityIndexWriter::write(const std::string& path, std::uint32_t sdbf_entries, std::uint32_t tlsh_entries) {
  std::array<TableArrays, 2> tables{build_table(sdbf_), build_table(tlsh_)};
  sdbf_ = {};
  tlsh_ = {};
  std::array<std::uint8_t, kHeaderBytes> header{};
  auto put32 = [&](std::size_t off, std::uint32_t v) { std::memcpy(header.data() + off, &v, 4); };
  auto put64 = [&](std::size_t off, std::uint64_t v) { std::memcpy(header.data() + off, &v, 8); };
  std::memcpy(header.data(), kMagic, 8);
  put32(8, kFormatVersion);
  put32(12, kSamplingVersion);
  put32(16, sdbf_entries);
  put32(20, tlsh_entries);
  std::uint64_t offset = kHeaderBytes;
  for (std::size_t i = 0; i < 2; ++i) {
    const auto& t = tables[i];
    if (t.ids.size() > std::numeric_limits<std::uint32_t>::max()) {
      return Error(ErrorCode::invalid_argument, path + ": too many postings for the index format");
    }
    put32(kDescOffset[i], t.bits);
    put32(kDescOffset[i] + 4, static_cast<std::uint32_t>(t.keys.size()));
    put32(kDescOffset[i] + 8, static_cast<std::uint32_t>(t.ids.size()));
    put64(kDescOffset[i] + 16, offset);
    offset += 4 * (t.dir.size() + t.keys.size() + t.starts.size() + t.ids.size());
  }
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) return Error(ErrorCode::io_error, "cannot write " + path);
  out.write(reinterpret_cast<const char*>(header.data()), header.size());
  for (const auto& t : tables) {
    for (const auto* v : {&t.dir, &t.keys, &t.starts, &t.ids}) {
      out.write(reinterpret_cast<const char*>(v->data()), static_cast<std::streamsize>(v->size() * 4));
    }
  }
  if (!out.flush()) return Error(ErrorCode::io_error, "writing " + path + " failed");
  return {};
}

struct SimilarityIndex::Data {
  std::optional<MappedFile> file;
  std::uint32_t sdbf_entries = 0, tlsh_entries = 0;
  PostingsTable sdbf, tlsh;
};

namespace {

// Checks one table's bounds and invariants; on success fills `t`.
Status open_table(const std::string& path, const char* what, std::span<const std::uint8_t> bytes,
                  std::size_t desc, std::uint32_t entries, PostingsTable& t) {
  auto bad = [&](const std::string& problem) {
    return Error(ErrorCode::parse_error, path + ": " + what + " table: " + problem);
  };
  const std::uint8_t* d = bytes.data() + desc;
  t.bits = load_u32(d);
  t.nkeys = load_u32(d + 4);
  t.nids = load_u32(d + 8);
  const std::uint64_t offset = load_u64(d + 16);
  if (t.bits > kMaxDirBits) return bad("directory of 2^" + std::to_string(t.bits) + " buckets");
  if (offset % 4 != 0 || offset < kHeaderBytes || offset > bytes.size()) return bad("offset out of the file");
  const std::uint64_t words = ((std::uint64_t{1} << t.bits) + 1) + std::uint64_t{t.nkeys} * 2 + 1 + t.nids;
  if (words > (bytes.size() - offset) / 4) return bad("truncated (needs " + std::to_string(words * 4) + " bytes)");
  const auto* base = reinterpret_cast<const std::uint32_t*>(bytes.data() + offset);
  t.dir = base;
  t.keys = t.dir + (std::size_t{1} << t.bits) + 1;
  t.starts = t.keys + t.nkeys;
  t.ids = t.starts + t.nkeys + 1;
  const std::size_t buckets = std::size_t{1} << t.bits;
  if (t.dir[0] != 0 || t.dir[buckets] != t.nkeys) return bad("directory does not span the keys");
  for (std::size_t b = 0; b < buckets; ++b) {
    if (t.dir[b] > t.dir[b + 1]) return bad("directory not ascending");
    for (std::uint32_t k = t.dir[b]; k < t.dir[b + 1]; ++k) {
      if (bucket_of(t.keys[k], t.bits) != b) return bad("key in the wrong bucket");
      if (k > 0 && t.keys[k] <= t.keys[k - 1]) return bad("keys not ascending");
    }
  }
  if (t.starts[0] != 0 || t.starts[t.nkeys] != t.nids) return bad("postings do not span the ids");
  for (std::uint32_t k = 0; k < t.nkeys; ++k) {
    if (t.starts[k] > t.starts[k + 1]) return bad("postings not ascending");
  }
  for (std::uint32_t i = 0; i < t.nids; ++i) {
    if (t.ids[i] >= entries) return bad("entry id " + std::to_string(t.ids[i]) + " out of range");
  }
  return {};
}

}  // namespace

Result<SimilarityIndex> SimilarityIndex::open(const std::string& path) {
  auto file = MappedFile::open(path);
  if (!file.ok()) return std::move(file).error();
  auto data = std::make_unique<Data>();
  data->file.emplace(std::move(file).value());
  const auto bytes = data->file->bytes();
  if (bytes.size() < kHeaderBytes) {
    return Error(ErrorCode::parse_error, path + ": truncated similarity index (" + std::to_string(bytes.size()) +
                                             " bytes, header needs " + std::to_string(kHeaderBytes) + ")");
  }
  if (std::memcmp(bytes.data(), kMagic, 8) != 0) return Error(ErrorCode::parse_error, path + ": not a similarity index");
  if (load_u32(bytes.data() + 8) != kFormatVersion || load_u32(bytes.data() + 12) != kSamplingVersion) {
    return Error(ErrorCode::parse_error, path + ": unsupported similarity index version (rebuild the set)");
  }
  if (reinterpret_cast<std::uintptr_t>(bytes.data()) % 4 != 0) {
    return Error(ErrorCode::io_error, path + ": mapping is not 4-byte aligned");
  }
  data->sdbf_entries = load_u32(bytes.data() + 16);
  data->tlsh_entries = load_u32(bytes.data() + 20);
  if (auto st = open_table(path, "SDBF", bytes, kDescOffset[0], data->sdbf_entries, data->sdbf); !st.ok()) {
    return std::move(st).error();
  }
  if (auto st = open_table(path, "TLSH", bytes, kDescOffset[1], data->tlsh_entries, data->tlsh); !st.ok()) {
    return std::move(st).error();
  }
  return SimilarityIndex(std::move(data));
}

SimilarityIndex::SimilarityIndex(std::unique_ptr<Data> data) : data_(std::move(data)) {}
SimilarityIndex::SimilarityIndex(SimilarityIndex&&) noexcept = default;
SimilarityIndex& SimilarityIndex::operator=(SimilarityIndex&&) noexcept = default;
SimilarityIndex::~SimilarityIndex() = default;

std::uint32_t SimilarityIndex::sdbf_entries() const { return data_->sdbf_entries; }
std::uint32_t SimilarityIndex::tlsh_entries() const { return data_->tlsh_entries; }
std::uint64_t SimilarityIndex::file_bytes() const { return data_->file->size(); }

void SimilarityIndex::sdbf_candidates(std::span<const std::uint32_t> content_keys, std::vector<std::uint32_t>& out,
                                      unsigned min_shared) const {
  out.clear();
  auto& s = t_scratch;
  s.begin(data_->sdbf_entries);
  min_shared = std::clamp(min_shared, 1u, 65535u);
  for_each_posting(data_->sdbf, content_keys, kMaxPostingLength, [&](std::uint32_t id) {
    if (s.stamp[id] != s.epoch) {
      s.stamp[id] = s.epoch;
      s.count[id] = 0;
    }
    if (s.count[id] < 65535 && ++s.count[id] == min_shared) out.push_back(id);
  });
  std::sort(out.begin(), out.end());
}

void SimilarityIndex::tlsh_candidates(const digest::TlshDigest& query, std::vector<std::uint32_t>& out,
                                      unsigned min_shared, std::uint32_t max_posting) const {
  // A query reads ~100 short postings (~1,000 ids, ~600 distinct). Counting
  // them in entries-sized scratch arrays costs two random cache misses per id
  // at a million references (the arrays are 6 MB); sorting the ids gathered
  // in one small vector costs a few microseconds and yields the ascending
  // order callers want anyway, and the shared-group count is a run length.
  thread_local std::vector<std::uint32_t> ids;
  ids.clear();
  out.clear();
  min_shared = std::max(min_shared, 1u);
  for_each_posting(data_->tlsh, tlsh_probe_keys(query), max_posting, [&](std::uint32_t id) { ids.push_back(id); });
  sort_ids(ids, data_->tlsh_entries);
  for (std::size_t i = 0; i < ids.size();) {
    std::size_t j = i + 1;
    while (j < ids.size() && ids[j] == ids[i]) ++j;
    if (j - i >= min_shared) out.push_back(ids[i]);
    i = j;
  }
}

}  // namespace hashsieve::refset
