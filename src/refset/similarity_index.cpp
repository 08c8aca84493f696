#include "hashsieve/refset/similarity_index.h"

#include "hashsieve/refset/catalog.h"

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
//   8   u32 format version (2: TLSH postings carry digest headers, TLSH
//       digests stored; version 1 files are refused with "rebuild the set")
//   12  u32 sampling version (3: gear-64 windows, top-bits rule, shifts 3..6;
//       TLSH median-bit groups in length bands of 16 classes)
//   16  u32 SDBF entries        20  u32 TLSH entries
//   24  table descriptor SDBF   48  table descriptor TLSH    (24 bytes each:
//       u32 dir_bits, u32 keys, u32 postings, u32 words per posting
//       (SDBF 1, TLSH 2), u64 offset)
//   72  u64 offset of the TLSH digests (64-byte aligned)
//   80..127 reserved (zero)
// A table at `offset` (4-byte aligned) is four u32 arrays back to back:
//   dir[2^dir_bits + 1]   first key index of each top-bits bucket
//   keys[keys]            strictly ascending
//   starts[keys + 1]      first posting index of each key's postings
//   postings[postings * words]  entry ids, ascending within a key; a TLSH
//                         posting is {entry id, header of its digest}
// The TLSH digests: bodies[TLSH entries][32] (TlshDigest::body() bytes),
// then headers[TLSH entries] (u32). A header packs the digest's L value
// (bits 0-7), q1 ratio (8-11), q2 ratio (12-15) and checksum (16-23); the
// copy in each posting equals the entry's header (checked at open). Entries
// without a digest have a zero body and header and no postings.
constexpr char kMagic[8] = {'H', 'S', 'S', 'I', 'M', 'I', 'D', 'X'};
constexpr std::uint32_t kFormatVersion = 2;
constexpr std::uint32_t kSamplingVersion = 3;
constexpr std::size_t kHeaderBytes = 128;
constexpr std::size_t kDescOffset[2] = {24, 48};
constexpr std::size_t kTlshDigestsOffset = 72;
constexpr std::uint32_t kWordsPerPosting[2] = {1, 2};
constexpr std::uint32_t kMaxDirBits = 24;
// LoadedRefset::similar asks the index for TLSH candidates with the default
// max_distance whenever its own threshold is at most kTlshIndexedMaxDistance.
static_assert(kTlshIndexedMaxDistance <= kTlshCandidateMaxDistance);

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

std::uint32_t tlsh_header_word(const digest::TlshDigest& d) {
  return std::uint32_t{d.lvalue()} | std::uint32_t{d.q1_ratio()} << 8 | std::uint32_t{d.q2_ratio()} << 12 |
         std::uint32_t{d.checksum()} << 16;
}

// One postings table as written: sorted (key << 32 | entry) pairs in,
// arrays out; keys with more than kMaxPostingLength entries are dropped.
// `ids` holds the postings (entry ids), words per posting apart; a caller
// fills the other words.
struct TableArrays {
  std::uint32_t bits = 0;
  std::vector<std::uint32_t> dir, keys, starts, ids;
};

TableArrays build_table(std::vector<std::uint64_t>& pairs, std::uint32_t words) {
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
      for (std::size_t k = i; k < j; ++k) {
        t.ids.push_back(static_cast<std::uint32_t>(pairs[k]));
        for (std::uint32_t w = 1; w < words; ++w) t.ids.push_back(0);
      }
      t.starts.push_back(static_cast<std::uint32_t>(t.ids.size() / words));
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
  std::uint32_t bits = 0, nkeys = 0, nids = 0, words = 1;
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
      __builtin_prefetch(t.ids + std::size_t{lo[i]} * t.words);
    }
    for (std::size_t i = 0; i < n; ++i) {
      if (found[i] == ~0u) continue;
      for (std::uint32_t p = lo[i]; p < hi[i]; ++p) visit(t.ids + std::size_t{p} * t.words);
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
  tlsh_digests_.emplace_back(entry, digest);
}

Status SimilarityIndexWriter::write(const std::string& path, std::uint32_t sdbf_entries, std::uint32_t tlsh_entries) {
  // The TLSH digests, by entry, and each TLSH posting's copy of its header.
  std::vector<std::uint8_t> bodies(std::size_t{tlsh_entries} * digest::kTlshBodyBytes);
  std::vector<std::uint32_t> headers(tlsh_entries);
  for (const auto& [entry, d] : tlsh_digests_) {
    if (entry >= tlsh_entries) {
      return Error(ErrorCode::invalid_argument, path + ": TLSH entry " + std::to_string(entry) + " beyond the " +
                                                    std::to_string(tlsh_entries) + " entries written");
    }
    std::memcpy(bodies.data() + std::size_t{entry} * digest::kTlshBodyBytes, d.body().data(), digest::kTlshBodyBytes);
    headers[entry] = tlsh_header_word(d);
  }
  tlsh_digests_ = {};
  for (const auto pair : sdbf_) {
    if (static_cast<std::uint32_t>(pair) >= sdbf_entries) {
      return Error(ErrorCode::invalid_argument, path + ": SDBF entry " + std::to_string(static_cast<std::uint32_t>(pair)) +
                                                    " beyond the " + std::to_string(sdbf_entries) + " entries written");
    }
  }
  std::array<TableArrays, 2> tables{build_table(sdbf_, kWordsPerPosting[0]), build_table(tlsh_, kWordsPerPosting[1])};
  sdbf_ = {};
  tlsh_ = {};
  for (std::size_t p = 0; p < tables[1].ids.size(); p += 2) tables[1].ids[p + 1] = headers[tables[1].ids[p]];
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
    const std::size_t postings = t.ids.size() / kWordsPerPosting[i];
    if (postings > std::numeric_limits<std::uint32_t>::max()) {
      return Error(ErrorCode::invalid_argument, path + ": too many postings for the index format");
    }
    put32(kDescOffset[i], t.bits);
    put32(kDescOffset[i] + 4, static_cast<std::uint32_t>(t.keys.size()));
    put32(kDescOffset[i] + 8, static_cast<std::uint32_t>(postings));
    put32(kDescOffset[i] + 12, kWordsPerPosting[i]);
    put64(kDescOffset[i] + 16, offset);
    offset += 4 * (t.dir.size() + t.keys.size() + t.starts.size() + t.ids.size());
  }
  // Bodies start on a cache line, so reading one is a single miss.
  const std::uint64_t pad = (64 - offset % 64) % 64;
  put64(kTlshDigestsOffset, offset + pad);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) return Error(ErrorCode::io_error, "cannot write " + path);
  out.write(reinterpret_cast<const char*>(header.data()), header.size());
  for (const auto& t : tables) {
    for (const auto* v : {&t.dir, &t.keys, &t.starts, &t.ids}) {
      out.write(reinterpret_cast<const char*>(v->data()), static_cast<std::streamsize>(v->size() * 4));
    }
  }
  const std::array<char, 64> zeros{};
  out.write(zeros.data(), static_cast<std::streamsize>(pad));
  out.write(reinterpret_cast<const char*>(bodies.data()), static_cast<std::streamsize>(bodies.size()));
  out.write(reinterpret_cast<const char*>(headers.data()), static_cast<std::streamsize>(headers.size() * 4));
  if (!out.flush()) return Error(ErrorCode::io_error, "writing " + path + " failed");
  return {};
}

struct SimilarityIndex::Data {
  std::optional<MappedFile> file;
  std::uint32_t sdbf_entries = 0, tlsh_entries = 0;
  PostingsTable sdbf, tlsh;
  const std::uint8_t* tlsh_bodies = nullptr;     // [tlsh_entries][32]
  const std::uint32_t* tlsh_headers = nullptr;   // [tlsh_entries]
};

namespace {

// Checks one table's bounds and invariants; on success fills `t`.
Status open_table(const std::string& path, const char* what, std::span<const std::uint8_t> bytes,
                  std::size_t desc, std::uint32_t words, std::uint32_t entries, PostingsTable& t) {
  auto bad = [&](const std::string& problem) {
    return Error(ErrorCode::parse_error, path + ": " + what + " table: " + problem);
  };
  const std::uint8_t* d = bytes.data() + desc;
  t.bits = load_u32(d);
  t.nkeys = load_u32(d + 4);
  t.nids = load_u32(d + 8);
  t.words = load_u32(d + 12);
  const std::uint64_t offset = load_u64(d + 16);
  if (t.words != words) return bad(std::to_string(t.words) + " words per posting, expected " + std::to_string(words));
  if (t.bits > kMaxDirBits) return bad("directory of 2^" + std::to_string(t.bits) + " buckets");
  if (offset % 4 != 0 || offset < kHeaderBytes || offset > bytes.size()) return bad("offset out of the file");
  const std::uint64_t need =
      ((std::uint64_t{1} << t.bits) + 1) + std::uint64_t{t.nkeys} * 2 + 1 + std::uint64_t{t.nids} * t.words;
  if (need > (bytes.size() - offset) / 4) return bad("truncated (needs " + std::to_string(need * 4) + " bytes)");
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
    const std::uint32_t id = t.ids[std::size_t{i} * t.words];
    if (id >= entries) return bad("entry id " + std::to_string(id) + " out of range");
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
  if (auto st = open_table(path, "SDBF", bytes, kDescOffset[0], kWordsPerPosting[0], data->sdbf_entries, data->sdbf);
      !st.ok()) {
    return std::move(st).error();
  }
  if (auto st = open_table(path, "TLSH", bytes, kDescOffset[1], kWordsPerPosting[1], data->tlsh_entries, data->tlsh);
      !st.ok()) {
    return std::move(st).error();
  }
  const std::uint64_t digests = load_u64(bytes.data() + kTlshDigestsOffset);
  const std::uint64_t digests_bytes = std::uint64_t{data->tlsh_entries} * (digest::kTlshBodyBytes + 4);
  if (digests % 64 != 0 || digests < kHeaderBytes || digests > bytes.size() ||
      digests_bytes > bytes.size() - digests) {
    return Error(ErrorCode::parse_error, path + ": TLSH digests out of the file (truncated?)");
  }
  data->tlsh_bodies = bytes.data() + digests;
  data->tlsh_headers =
      reinterpret_cast<const std::uint32_t*>(data->tlsh_bodies + std::size_t{data->tlsh_entries} * digest::kTlshBodyBytes);
  for (std::uint32_t e = 0; e < data->tlsh_entries; ++e) {
    if (data->tlsh_headers[e] >> 24 != 0) {
      return Error(ErrorCode::parse_error, path + ": TLSH digest header " + std::to_string(e) + " has unused bits set");
    }
  }
  const PostingsTable& t = data->tlsh;
  for (std::uint32_t i = 0; i < t.nids; ++i) {
    if (t.ids[2 * std::size_t{i} + 1] != data->tlsh_headers[t.ids[2 * std::size_t{i}]]) {
      return Error(ErrorCode::parse_error,
                   path + ": TLSH table: posting " + std::to_string(i) + " does not match its digest's header");
    }
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
  for_each_posting(data_->sdbf, content_keys, kMaxPostingLength, [&](const std::uint32_t* posting) {
    const std::uint32_t id = *posting;
    if (s.stamp[id] != s.epoch) {
      s.stamp[id] = s.epoch;
      s.count[id] = 0;
    }
    if (s.count[id] < 65535 && ++s.count[id] == min_shared) out.push_back(id);
  });
  std::sort(out.begin(), out.end());
}

void SimilarityIndex::tlsh_candidates(const digest::TlshDigest& query, std::vector<std::uint32_t>& out,
                                      unsigned min_shared, std::uint32_t max_posting, int max_distance) const {
  // A query reads ~100 short postings (~1,000 ids, ~600 distinct at 1 M
  // references). Each posting carries its digest's header, whose part of
  // the distance (length class, quartile ratios, checksum) is a lower bound
  // of the whole: most unrelated references already exceed max_distance on
  // it, so they are dropped while the postings are read, before any of
  // their own cache lines is touched. The survivors are deduplicated by
  // sorting (no entries-sized scratch: that costs two random misses per id
  // at a million references), and then scored exactly from the bodies kept
  // in the index (one cache line each, prefetched), so `out` holds exactly
  // the candidates within max_distance.
  thread_local std::vector<std::uint32_t> ids;
  ids.clear();
  out.clear();
  min_shared = std::max(min_shared, 1u);
  if (max_distance < 0) return;
  const Data& d = *data_;
  // The header distance of a reference, by table: L value term by its L
  // value, quartile terms by its packed ratios. tlsh_header_distance is a
  // sum of independent terms, so varying one field of the query at a time
  // gives each term exactly.
  std::array<std::int32_t, 256> l_term{}, q_term{};
  {
    const auto& body = query.body();
    const std::uint8_t cs = query.checksum(), lv = query.lvalue(), q1 = query.q1_ratio(), q2 = query.q2_ratio();
    for (unsigned v = 0; v < 256; ++v) {
      l_term[v] = digest::tlsh_header_distance(
          query, digest::TlshDigest::from_fields(cs, static_cast<std::uint8_t>(v), q1, q2, body));
    }
    std::array<std::int32_t, 16> q1_term{}, q2_term{};
    for (unsigned v = 0; v < 16; ++v) {
      q1_term[v] = digest::tlsh_header_distance(
          query, digest::TlshDigest::from_fields(cs, lv, static_cast<std::uint8_t>(v), q2, body));
      q2_term[v] = digest::tlsh_header_distance(
          query, digest::TlshDigest::from_fields(cs, lv, q1, static_cast<std::uint8_t>(v), body));
    }
    for (unsigned v = 0; v < 256; ++v) q_term[v] = q1_term[v & 15] + q2_term[v >> 4];
  }
  const std::uint32_t cs = query.checksum();
  auto header_distance = [&](std::uint32_t h) {
    return l_term[h & 255] + q_term[(h >> 8) & 255] + static_cast<std::int32_t>(((h >> 16) & 255) != cs);
  };
  for_each_posting(d.tlsh, tlsh_probe_keys(query), max_posting, [&](const std::uint32_t* posting) {
    if (header_distance(posting[1]) <= max_distance) ids.push_back(posting[0]);
  });
  sort_ids(ids, d.tlsh_entries);
  std::size_t n = 0;
  for (std::size_t i = 0; i < ids.size();) {
    std::size_t j = i + 1;
    while (j < ids.size() && ids[j] == ids[i]) ++j;
    if (j - i >= min_shared) ids[n++] = ids[i];
    i = j;
  }
  ids.resize(n);
  constexpr std::size_t kAhead = 8;
  for (std::size_t i = 0; i < std::min(kAhead, n); ++i) __builtin_prefetch(d.tlsh_bodies + std::size_t{ids[i]} * 32);
  std::array<std::uint8_t, digest::kTlshBodyBytes> body{};
  for (std::size_t i = 0; i < n; ++i) {
    if (i + kAhead < n) {
      __builtin_prefetch(d.tlsh_bodies + std::size_t{ids[i + kAhead]} * digest::kTlshBodyBytes);
      __builtin_prefetch(d.tlsh_headers + ids[i + kAhead]);
    }
    const std::uint32_t id = ids[i];
    std::memcpy(body.data(), d.tlsh_bodies + std::size_t{id} * digest::kTlshBodyBytes, body.size());
    if (header_distance(d.tlsh_headers[id]) + digest::tlsh_body_distance(query.body(), body) <= max_distance) {
      out.push_back(id);
    }
  }
}

}  // namespace hashsieve::refset
