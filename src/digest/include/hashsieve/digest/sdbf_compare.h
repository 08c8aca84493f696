// Repeated SDBF comparisons (all pairs of a digest set, one set against
// another): digests prepared once, compared many times.
//
// sdbf_score(const Sdbf&, const Sdbf&) (sdbf.h) is self-contained and
// allocation-free in steady state, but it either scans the target digest in
// its stored layout or, when the reference side has many filters, transposes
// the target first, on every call. A PreparedSdbf holds the transposed layout,
// so an all-pairs loop over prepared digests does no per-pair setup and always
// uses the fastest scan (about 2x sdbf_score on a mixed set). Scores are
// identical to sdbf_score on the underlying digests.
//
//   std::vector<Sdbf> set = ...;
//   auto prepared = prepare_sdbfs(set);          // keeps pointers into `set`
//   for (i < j) sdbf_score(prepared[i], prepared[j]);
//
// For whole sets, PreparedSdbfSet (below) is faster still (about 1.5x on a
// real mix of mostly small digests, 1.2x on large ones).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "hashsieve/digest/sdbf.h"

namespace hashsieve::digest {

namespace sdbf_internal {
struct PreparedAccess;
struct LaneLayout;
struct PreparedSetData;
}

class PreparedSdbf {
 public:
  // Keeps a reference: `digest` must outlive this object and stay unchanged.
  explicit PreparedSdbf(const Sdbf& digest);
  ~PreparedSdbf();
  PreparedSdbf(PreparedSdbf&&) noexcept;
  PreparedSdbf& operator=(PreparedSdbf&&) noexcept;

  const Sdbf& digest() const { return *digest_; }

 private:
  friend struct sdbf_internal::PreparedAccess;

  const Sdbf* digest_;
  std::uint32_t dense_ = 0;  // filters with >= 16 elements
  // The filters transposed for the SIMD kernel, dense ones first (about the
  // size of the digest's own filter data).
  std::unique_ptr<sdbf_internal::LaneLayout> layout_;
};

// Prepares every digest of a set, in order.
std::vector<PreparedSdbf> prepare_sdbfs(std::span<const Sdbf> digests);

// Same results as sdbf_score / sdbf_score_counted on a.digest(), b.digest().
int sdbf_score(const PreparedSdbf& a, const PreparedSdbf& b);
int sdbf_score_counted(const PreparedSdbf& a, const PreparedSdbf& b, std::uint64_t* filter_comparisons);

// A whole digest set prepared for repeated comparison (the fastest way to
// compare sets). Real sets are mostly digests of one to a few filters, where
// the cost of a pair is dominated by setup and cache misses rather than bit
// counting; this keeps every filter of the set in one contiguous arena with
// compact per-digest and per-filter headers, and the orientation's name test
// as a precomputed rank. Wide digests also get a PreparedSdbf lane layout.
// On AVX-512 CPUs the set's filters are also kept transposed (all filters,
// and those of the one-filter digests), so that a row whose reference side
// is a single filter - a one-filter digest's row, and the one-filter targets
// of any row - is scored 16 targets at a time with no per-pair setup. That
// costs about twice the filter data in memory (256 bytes per filter, plus
// 256 per one-filter digest) on top of the arena.
//
//   PreparedSdbfSet set(digests);                // keeps pointers into `digests`
//   std::vector<int> row(set.size());
//   sdbf_score_row(set, i, set, i + 1, std::span(row).first(set.size() - i - 1));
class PreparedSdbfSet {
 public:
  // Keeps references: `digests` must outlive this object and stay unchanged.
  explicit PreparedSdbfSet(std::span<const Sdbf> digests);
  ~PreparedSdbfSet();
  PreparedSdbfSet(PreparedSdbfSet&&) noexcept;
  PreparedSdbfSet& operator=(PreparedSdbfSet&&) noexcept;

  std::size_t size() const;
  const Sdbf& digest(std::size_t i) const;

 private:
  friend struct sdbf_internal::PreparedSetData;
  std::unique_ptr<sdbf_internal::PreparedSetData> data_;
};

// Same results as sdbf_score / sdbf_score_counted on a.digest(i), b.digest(j)
// (a and b may be the same set).
int sdbf_score(const PreparedSdbfSet& a, std::size_t i, const PreparedSdbfSet& b, std::size_t j);
int sdbf_score_counted(const PreparedSdbfSet& a, std::size_t i, const PreparedSdbfSet& b, std::size_t j,
                       std::uint64_t* filter_comparisons);
// out[k] = sdbf_score(a, i, b, first + k) for every k < out.size(): one row of
// an all-pairs loop, with the per-call overhead paid once.
void sdbf_score_row(const PreparedSdbfSet& a, std::size_t i, const PreparedSdbfSet& b, std::size_t first,
                    std::span<int> out, std::uint64_t* filter_comparisons = nullptr);

}  // namespace hashsieve::digest
