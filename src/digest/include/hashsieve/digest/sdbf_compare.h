// Repeated SDBF comparisons (all pairs of a digest set, one set against
// another): digests prepared once, compared many times.
//
// sdbf_score(const Sdbf&, const Sdbf&) (sdbf.h) is self-contained and
// allocation-free in steady state, but it rebuilds a small comparison layout
// of the target digest on every call. A PreparedSdbf holds that layout, so an
// all-pairs loop over prepared digests does no per-pair setup at all. Scores
// are identical to sdbf_score on the underlying digests.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "hashsieve/digest/sdbf.h"

namespace hashsieve::digest {

namespace sdbf_internal {
struct PreparedAccess;
}

class PreparedSdbf {
 public:
  // Keeps a reference: `digest` must outlive this object and stay unchanged.
  explicit PreparedSdbf(const Sdbf& digest);

  const Sdbf& digest() const { return *digest_; }

 private:
  friend struct sdbf_internal::PreparedAccess;

  const Sdbf* digest_;
  std::uint32_t dense_ = 0;        // filters with >= 16 elements
  std::size_t stride_ = 0;         // lane arrays' length: filter count rounded up to 16
  // Per filter, dense filters first (a comparison over "dense filters only" is
  // then a prefix): element count, weight, index in the digest.
  std::vector<std::uint32_t> counts_, weights_, index_;
  // The first 4 words of every filter, transposed: word k of filter j (in the
  // order above) is plane_[k * stride_ + j].
  std::vector<std::uint64_t> plane_;
};

// Prepares every digest of a set, in order.
std::vector<PreparedSdbf> prepare_sdbfs(std::span<const Sdbf> digests);

// Same results as sdbf_score / sdbf_score_counted on a.digest(), b.digest().
int sdbf_score(const PreparedSdbf& a, const PreparedSdbf& b);
int sdbf_score_counted(const PreparedSdbf& a, const PreparedSdbf& b, std::uint64_t* filter_comparisons);

}  // namespace hashsieve::digest
