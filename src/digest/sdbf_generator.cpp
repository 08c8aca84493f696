// SDBF generation (spec sections 4-6): feature selection over the rank and
// score passes, SHA-1 of each selected 64-byte window, Bloom-filter insertion.
#include "hashsieve/digest/sdbf_generator.h"

#include <sys/mman.h>

#include <algorithm>
#include <bit>
#include <cstdint>
#include <cstring>
#include <new>
#include <thread>
#include <vector>

#include "sdbf_scan.h"
#include "sha1_feature.h"

namespace hashsieve::digest {

static_assert(std::endian::native == std::endian::little,
              "filters are stored as little-endian 64-bit words");

namespace {

constexpr std::size_t kStreamChunk = std::size_t{32} << 20;
constexpr std::uint32_t kStreamMinScore = 16;  // stream features need score > 16
constexpr std::uint32_t kStreamDropBelow = kSdbfStreamMaxElements / 8;
constexpr std::uint32_t kBlockMinCut = 16;     // cut search stops below this level
constexpr std::uint32_t kTailCut = 16;
constexpr std::uint32_t kBitMask = 0x7FF;

// Sets the 5 bits of one feature (spec 4); true when at least one was new.
inline bool bloom_insert(std::uint64_t* filter, const std::uint8_t* digest) {
  std::uint64_t added = 0;
  for (int k = 0; k < 5; ++k) {
    std::uint32_t w;
    std::memcpy(&w, digest + 4 * k, 4);  // little-endian read (spec 4, step 2)
    const std::uint32_t idx = w & kBitMask;
    const std::uint64_t bit = std::uint64_t{1} << (idx & 63);
    std::uint64_t& word = filter[idx >> 6];
    added |= ~word & bit;
    word |= bit;
  }
  return added != 0;
}

// A scratch array in its own anonymous mapping, on transparent huge pages
// where the kernel allows them. The per-position arrays of a large region
// are tens of MB: on 4 KiB pages their first use costs one page fault per
// 4 KiB (≈ 14,000 for a 16 MiB file), on 2 MiB pages a few dozen. The
// contents start undefined (callers write before they read), so growing
// does not clear memory that the passes overwrite anyway.
template <typename T>
class ScratchArray {
 public:
  ScratchArray() = default;
  ScratchArray(const ScratchArray&) = delete;
  ScratchArray& operator=(const ScratchArray&) = delete;
  ~ScratchArray() { release(); }

  std::size_t size() const { return size_; }
  T* data() { return data_; }
  const T* data() const { return data_; }
  T& operator[](std::size_t k) { return data_[k]; }
  const T& operator[](std::size_t k) const { return data_[k]; }

  // Makes room for n elements; old contents are not kept.
  void reset(std::size_t n) {
    release();
    if (n == 0) return;
    const std::size_t want = n * sizeof(T);
    if (want < kHuge) {
      // Small (block mode, small files): from the heap. A huge page would
      // clear far more memory than is used, and page-aligned arrays (rank,
      // score and candidates all at the same offset in a page) made block
      // mode 8 % slower than heap ones, side by side (2026-11-23).
      data_ = new T[n];
      mapped_ = 0;
    } else {
      const std::size_t bytes = (want + kHuge - 1) / kHuge * kHuge;
      // Over-map by one huge page so that the array can start on a 2 MiB
      // boundary (THP only backs aligned 2 MiB ranges), then unmap the rest.
      const auto addr = reinterpret_cast<std::uintptr_t>(map(bytes + kHuge));
      const std::uintptr_t aligned = (addr + kHuge - 1) / kHuge * kHuge;
      if (aligned > addr) ::munmap(reinterpret_cast<void*>(addr), aligned - addr);
      ::munmap(reinterpret_cast<void*>(aligned + bytes), kHuge - (aligned - addr));
      ::madvise(reinterpret_cast<void*>(aligned), bytes, MADV_HUGEPAGE);  // best effort
      data_ = reinterpret_cast<T*>(aligned);
      mapped_ = bytes;
    }
    size_ = n;
  }
  void release() {
    if (mapped_ != 0) {
      ::munmap(data_, mapped_);
    } else {
      delete[] data_;
    }
    data_ = nullptr;
    size_ = 0;
    mapped_ = 0;
  }

 private:
  static constexpr std::size_t kHuge = std::size_t{2} << 20;
  static void* map(std::size_t bytes) {
    void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();
    return p;
  }
  T* data_ = nullptr;
  std::size_t size_ = 0;
  std::size_t mapped_ = 0;
};

}  // namespace

struct SdbfGenerator::Scratch {
  ScratchArray<std::uint16_t> rank;
  ScratchArray<std::uint8_t> score;
  ScratchArray<std::uint32_t> cand;
  std::vector<std::unique_ptr<Scratch>> helpers;  // per extra block-mode thread

  // Frees buffers grown past `max_len` positions (a 32 MiB stream chunk
  // needs about 100 MB of scratch, not worth keeping in a thread-local).
  void trim(std::size_t max_len) {
    if (rank.size() > max_len) {
      rank.release();
      score.release();
      cand.release();
    }
    for (auto& h : helpers) h->trim(max_len);
  }

  // Fills rank/score for buf[0..len) and lists the positions p < len-64 whose
  // score is >= min_score in cand; returns how many.
  std::size_t scan(const std::uint8_t* buf, std::size_t len, std::uint32_t min_score) {
    if (rank.size() < len) {
      // Geometric growth: a run over many files of rising size reallocates
      // (and page-faults fresh memory) only a few times.
      const std::size_t cap = std::max(len, 2 * rank.size());
      rank.reset(cap);
      score.reset(cap);
      // Every scan iteration adds at most one point to one score, so at most
      // len / 15 positions reach the lowest threshold in use (15); the
      // portable selection writes one slot past the last hit.
      cand.reset(cap / 8 + 64);
    }
    sdbf_ranks(buf, len, rank.data());
    sdbf_scores(rank.data(), len, score.data());
    if (len <= kSdbfWindow) return 0;
    return sdbf_select(score.data(), len - kSdbfWindow, static_cast<std::uint8_t>(min_score),
                       cand.data());
  }
};

SdbfGenerator::SdbfGenerator() : scratch_(std::make_unique<Scratch>()) {}
SdbfGenerator::~SdbfGenerator() = default;
SdbfGenerator::SdbfGenerator(SdbfGenerator&&) noexcept = default;
SdbfGenerator& SdbfGenerator::operator=(SdbfGenerator&&) noexcept = default;

std::optional<Sdbf> SdbfGenerator::stream(std::string name, std::span<const std::uint8_t> data) {
  if (data.size() < kSdbfMinInputBytes) return std::nullopt;
  Scratch& sc = *scratch_;
  std::vector<std::uint64_t> filters(kSdbfFilterWords, 0);
  std::uint32_t last = 0;
  auto insert = [&](const std::uint8_t* digest) {
    if (!bloom_insert(filters.data() + filters.size() - kSdbfFilterWords, digest)) return;
    if (++last == kSdbfStreamMaxElements) {
      filters.resize(filters.size() + kSdbfFilterWords, 0);
      last = 0;
    }
  };
  for (std::size_t off = 0; off < data.size(); off += kStreamChunk) {
    // Chunks are independent regions: ranks restart and no window crosses
    // a chunk boundary; only the filter state carries over.
    const std::size_t len = std::min(kStreamChunk, data.size() - off);
    const std::uint8_t* buf = data.data() + off;
    const std::size_t n = sc.scan(buf, len, kStreamMinScore + 1);
    // At most n features are inserted: room for all the filters they can
    // open, so the vector is not reallocated and copied as it grows.
    filters.reserve(filters.size() + (n / kSdbfStreamMaxElements + 1) * kSdbfFilterWords);
    const std::uint32_t* cand = sc.cand.data();
    std::size_t k = 0;
    std::uint8_t da[kSha1DigestBytes], db[kSha1DigestBytes], dc[kSha1DigestBytes], dd[kSha1DigestBytes];
    for (; k + 3 < n; k += 4) {
      // Hash four features at a time (independent), insert in order.
      sha1_feature_x4({buf + cand[k], buf + cand[k + 1], buf + cand[k + 2], buf + cand[k + 3]}, {da, db, dc, dd});
      insert(da);
      insert(db);
      insert(dc);
      insert(dd);
    }
    for (; k + 1 < n; k += 2) {
      sha1_feature_x2(buf + cand[k], buf + cand[k + 1], da, db);
      insert(da);
      insert(db);
    }
    if (k < n) {
      sha1_feature(buf + cand[k], da);
      insert(da);
    }
  }
  if (filters.size() > kSdbfFilterWords && last < kStreamDropBelow) {
    filters.resize(filters.size() - kSdbfFilterWords);
    last = kSdbfStreamMaxElements;
  }
  return Sdbf::from_stream(std::move(name), data.size(), std::move(filters), last);
}

namespace {

// Fills one block-mode filter (spec 6, fill()): candidates are positions in
// increasing order with score >= 15 (>= cut in a tail); those above the cut
// are taken, those at the cut only while `allowed` lasts.
std::uint16_t fill_block(const std::uint8_t* buf, const std::uint8_t* score,
                         const std::uint32_t* cand, std::size_t n, std::uint32_t cut,
                         std::uint32_t allowed, std::uint64_t* filter) {
  std::uint32_t cnt = 0;
  // Quota only ever shrinks, so a candidate found ineligible stays so.
  auto eligible = [&](std::uint32_t p) {
    return score[p] > cut || (score[p] == cut && allowed > 0);
  };
  auto take = [&](std::uint32_t p, const std::uint8_t* digest) {
    if (!bloom_insert(filter, digest)) return;
    ++cnt;
    if (score[p] == cut) --allowed;
  };
  std::size_t k = 0;
  std::uint8_t da[kSha1DigestBytes], db[kSha1DigestBytes];
  while (cnt < kSdbfBlockMaxElements) {
    while (k < n && !eligible(cand[k])) ++k;
    if (k == n) break;
    const std::uint32_t a = cand[k++];
    while (k < n && !eligible(cand[k])) ++k;
    if (k == n) {
      sha1_feature(buf + a, da);
      take(a, da);
      break;
    }
    // Speculatively hash the next eligible candidate with this one; it is
    // used only if it is still eligible after `a` was inserted.
    const std::uint32_t b = cand[k++];
    sha1_feature_x2(buf + a, buf + b, da, db);
    take(a, da);
    if (cnt < kSdbfBlockMaxElements && eligible(b)) take(b, db);
  }
  return static_cast<std::uint16_t>(cnt);
}

// Block b of `data`: full blocks pick their cut level from the score
// histogram; a tail block (>= 512 bytes) uses cut 16 with a full quota.
void hash_blocks(SdbfGenerator::Scratch& sc, std::span<const std::uint8_t> data,
                 std::uint32_t block_size, std::size_t first, std::size_t last_block,
                 std::uint64_t* filters, std::uint16_t* counts) {
  const std::size_t full_blocks = data.size() / block_size;
  for (std::size_t b = first; b < last_block; ++b) {
    const std::uint8_t* buf = data.data() + b * block_size;
    const bool full = b < full_blocks;
    const std::size_t len = full ? block_size : data.size() % block_size;
    std::uint32_t cut = kTailCut;
    std::uint32_t allowed = kSdbfBlockMaxElements;
    std::size_t n = 0;
    if (full) {
      n = sc.scan(buf, len, kBlockMinCut - 1);
      std::uint32_t histo[256] = {};
      // Only candidates (score >= 15) matter for the cut search.
      for (std::size_t k = 0; k < n; ++k) ++histo[sc.score[sc.cand[k]]];
      std::uint32_t k = 65;
      std::uint32_t taken = 0;
      while (k >= kBlockMinCut) {
        if (taken + histo[k] > kSdbfBlockMaxElements) break;
        taken += histo[k];
        --k;
      }
      cut = k;
      allowed = kSdbfBlockMaxElements - taken;
    } else {
      n = sc.scan(buf, len, kTailCut);
    }
    counts[b] = fill_block(buf, sc.score.data(), sc.cand.data(), n, cut, allowed,
                           filters + b * kSdbfFilterWords);
  }
}

}  // namespace

std::optional<Sdbf> SdbfGenerator::block(std::string name, std::span<const std::uint8_t> data,
                                         std::uint32_t block_size, unsigned threads) {
  if (data.size() < kSdbfMinInputBytes || block_size == 0) return std::nullopt;
  const std::size_t nblocks =
      data.size() / block_size + (data.size() % block_size >= kSdbfMinInputBytes ? 1 : 0);
  std::vector<std::uint64_t> filters(nblocks * kSdbfFilterWords, 0);
  std::vector<std::uint16_t> counts(nblocks, 0);
  const std::size_t nthreads = std::clamp<std::size_t>(threads, 1, nblocks);
  if (nthreads == 1) {
    hash_blocks(*scratch_, data, block_size, 0, nblocks, filters.data(), counts.data());
  } else {
    auto& helpers = scratch_->helpers;
    while (helpers.size() < nthreads - 1) helpers.push_back(std::make_unique<Scratch>());
    // Contiguous ranges of blocks; blocks are independent, so the split does
    // not affect the result.
    std::vector<std::thread> pool;
    pool.reserve(nthreads - 1);
    for (std::size_t t = 1; t < nthreads; ++t) {
      const std::size_t lo = nblocks * t / nthreads, hi = nblocks * (t + 1) / nthreads;
      pool.emplace_back([&, lo, hi, t] {
        hash_blocks(*helpers[t - 1], data, block_size, lo, hi, filters.data(), counts.data());
      });
    }
    hash_blocks(*scratch_, data, block_size, 0, nblocks / nthreads, filters.data(), counts.data());
    for (auto& th : pool) th.join();
  }
  return Sdbf::from_blocks(std::move(name), data.size(), block_size, std::move(filters),
                           std::move(counts));
}

namespace {
// Scratch kept by the free functions' thread-local generators between calls:
// enough for a whole stream-mode chunk, so that a run over many files maps
// and faults in its scratch once per thread rather than once per large file.
// The pages kept are those the largest region so far touched (3.5 bytes per
// position: 56 MB after a 16 MiB file). With 4 M positions kept, each file
// over 4 MiB mapped its arrays afresh: 5-6 % more CPU time for
// `hashsieve digest -p 1` over the mix; peak RSS 69 vs 71 MB at -p 1,
// 93 vs 90 MB at -p 2 (2026-11-23, docs/performance.md).
constexpr std::size_t kKeepScratchPositions = kStreamChunk;
}  // namespace

void SdbfGenerator::trim_scratch(std::size_t max_positions) { scratch_->trim(max_positions); }

std::optional<Sdbf> make_stream_sdbf(std::string name, std::span<const std::uint8_t> data) {
  thread_local SdbfGenerator gen;
  auto d = gen.stream(std::move(name), data);
  gen.trim_scratch(kKeepScratchPositions);
  return d;
}

std::optional<Sdbf> make_block_sdbf(std::string name, std::span<const std::uint8_t> data,
                                    std::uint32_t block_size, unsigned threads) {
  thread_local SdbfGenerator gen;
  auto d = gen.block(std::move(name), data, block_size, threads);
  gen.trim_scratch(kKeepScratchPositions);
  return d;
}

}  // namespace hashsieve::digest
