// SDBF comparison score (spec section 8), identical to sdhash 3.4.
//
// The score of a pair is decided by the reference's quirks: which side is
// iterated (orientation by filter count, last count and name), sparse-filter
// rules, an early exit in the common-bit count that really changes scores, and
// a running sum with a -1 sentinel. All of them are replicated literally; the
// speed comes from doing the cheap part (stage 1 of the early exit: 4 words
// AND+POPCNT and an integer cut-off) for many target filters at once and
// falling back to the exact scalar code only for the few that survive it.
#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <cmath>
#include <vector>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "hashsieve/digest/sdbf.h"
#include "hashsieve/digest/sdbf_compare.h"
#include "sdbf_compare_internal.h"

namespace hashsieve::digest {
namespace sdbf_internal {
namespace {

constexpr std::uint32_t kMaxCount = kExpectedSize - 1;
// Filters' bits: m = 8 * 256; features set k = 5 bits each.
constexpr int kFilterBits = 2048;
constexpr int kHashesPerFeature = 5;

// int32 so the AVX-512 kernel can gather a row directly.
struct ExpectedTable {
  alignas(64) std::int32_t v[kExpectedSize][kExpectedSize];
};

// Computed once at start-up (first use) exactly as the reference computes it:
// IEEE doubles and pow(). The spec notes no entry is within 8.8e-6 of a .5
// boundary, so any correctly rounded-ish pow gives the same integers.
ExpectedTable make_expected_table() {
  ExpectedTable t{};
  const double q = 1.0 - 1.0 / kFilterBits;
  for (std::uint32_t s1 = 0; s1 < kExpectedSize; ++s1) {
    for (std::uint32_t s2 = 0; s2 < kExpectedSize; ++s2) {
      const double e = kFilterBits * (1.0 - std::pow(q, kHashesPerFeature * static_cast<double>(s1)) -
                                      std::pow(q, kHashesPerFeature * static_cast<double>(s2)) +
                                      std::pow(q, kHashesPerFeature * static_cast<double>(s1 + s2)));
      t.v[s1][s2] = static_cast<std::int32_t>(std::round(e));
    }
  }
  return t;
}

const ExpectedTable& expected_table() {
  static const ExpectedTable table = make_expected_table();
  return table;
}

// Element counts above 192 cannot come from the parser or generator; clamp so
// a hand-built Sdbf can never index past the table.
inline std::uint32_t clamp_count(std::uint32_t c) { return c > kMaxCount ? kMaxCount : c; }

// cut = round_half_away(0.3 * (hi - lo) + lo) in exact integer form (spec 8.3);
// valid for hi >= lo. (For hi < lo the reference's unsigned wrap makes cut
// ~1.3e9, so the score is 0.)
inline std::uint32_t cut_off(std::uint32_t lo, std::uint32_t hi) { return lo + (3 * (hi - lo) + 5) / 10; }

// The AVX-512 kernel divides by 10 as (x * 52429) >> 19; that is exact for
// every x = 3*d + 5 that can occur (d <= 2048).
constexpr bool div10_by_multiply_is_exact() {
  for (std::uint32_t x = 0; x <= 3 * kFilterBits + 5; ++x) {
    if ((x * 52429u) >> 19 != x / 10) return false;
  }
  return true;
}
static_assert(div10_by_multiply_is_exact());

[[gnu::always_inline]] inline std::uint32_t popcount_words(const std::uint64_t* a, const std::uint64_t* b, std::size_t from,
                                    std::size_t to) {
  std::uint32_t c = 0;
  for (std::size_t k = from; k < to; ++k) c += static_cast<std::uint32_t>(std::popcount(a[k] & b[k]));
  return c;
}

// Score of one (reference filter, target filter) pair: spec 8.3's common_bits
// with its three-stage early exit, then the normalised excess over the cut-off.
[[gnu::always_inline]] inline double filter_pair_score(const std::uint64_t* a, const std::uint64_t* b, std::uint32_t lo,
                                std::uint32_t hi) {
  if (hi < lo) return 0.0;
  const std::uint32_t cut = cut_off(lo, hi);
  std::uint32_t c;
  if (cut > 0) {
    // Stages end at filter bytes 32, 64 and 128 = words 4, 8 and 16.
    c = popcount_words(a, b, 0, 4);
    if (8 * c + 48 < cut) return 0.0;
    c += popcount_words(a, b, 4, 8);
    if (4 * c + 48 < cut) return 0.0;
    c += popcount_words(a, b, 8, 16);
    if (2 * c + 48 < cut) return 0.0;
    c += popcount_words(a, b, 16, kSdbfFilterWords);
  } else {
    c = popcount_words(a, b, 0, kSdbfFilterWords);
  }
  if (c <= cut) return 0.0;
  return static_cast<double>(c - cut) / static_cast<double>(hi - cut);
}

// best(A, i, B) of spec 8.3 for a reference filter with s1 >= 16, scanning B
// directly. Returns -1 when no target filter is eligible. Always inlined into
// the per-target wrappers below, so std::popcount compiles to POPCNT where the
// wrapper's target allows it (the baseline x86-64 target has no POPCNT, and
// the bit-twiddling fallback is several times slower).
[[gnu::always_inline]] inline double best_scalar_impl(const std::uint64_t* a, std::uint32_t s1, std::uint32_t wa,
                                                      const Sdbf& b, bool skip_sparse) {
  const std::int32_t* row = expected_table().v[s1];
  double best = -1.0;
  const std::size_t n = b.filter_count();
  for (std::size_t j = 0; j < n; ++j) {
    const std::uint32_t s2 = clamp_count(b.element_count(j));
    if (skip_sparse && s2 < kSparseElements) continue;
    const std::uint32_t hi = std::min(wa, b.weight(j));
    const auto lo = static_cast<std::uint32_t>(row[s2]);
    best = std::max(best, filter_pair_score(a, b.filter_words(j), lo, hi));
  }
  return best;
}

double best_portable(const std::uint64_t* a, std::uint32_t s1, std::uint32_t wa, const Sdbf& b, bool skip_sparse) {
  return best_scalar_impl(a, s1, wa, b, skip_sparse);
}

#if defined(__x86_64__)
__attribute__((target("popcnt"))) double best_popcnt(const std::uint64_t* a, std::uint32_t s1, std::uint32_t wa,
                                                     const Sdbf& b, bool skip_sparse) {
  return best_scalar_impl(a, s1, wa, b, skip_sparse);
}
#endif

// The target filters one reference filter is scanned against, laid out for
// the SIMD kernel: element counts and weights as u32 lanes, the filter's index
// in its digest, and the first four words of every filter (stage 1 of the
// early exit) transposed so that word k of 8 consecutive targets is one 64-byte
// vector. Arrays hold a multiple of 16 lanes; lanes >= n are ignored.
struct TargetSpan {
  const std::uint32_t* s2;
  const std::uint32_t* w;
  const std::uint32_t* index;
  const std::uint64_t* plane;  // 4 rows of `stride` words
  std::size_t stride;
  std::size_t n;
};

constexpr std::size_t kLanes = 16;
inline std::size_t round_up_lanes(std::size_t n) { return (n + kLanes - 1) / kLanes * kLanes; }

// Lays out filters `order[0..n)` of `b` into the given arrays (sized for
// round_up_lanes(n) lanes), zero-filling the padding.
void fill_lanes(const Sdbf& b, const std::uint32_t* order, std::size_t n, std::uint32_t* s2, std::uint32_t* w,
                std::uint64_t* plane) {
  const std::size_t stride = round_up_lanes(n);
  for (std::size_t j = 0; j < stride; ++j) {
    if (j < n) {
      const std::uint32_t f = order[j];
      s2[j] = clamp_count(b.element_count(f));
      w[j] = b.weight(f);
      const std::uint64_t* words = b.filter_words(f);
      for (std::size_t k = 0; k < 4; ++k) plane[k * stride + j] = words[k];
    } else {
      s2[j] = 0;
      w[j] = 0;
      for (std::size_t k = 0; k < 4; ++k) plane[k * stride + j] = 0;
    }
  }
}

// The eligible target filters of one sdbf_score(Sdbf, Sdbf) call as a
// TargetSpan. Built once per pair and reused for every reference filter;
// thread-local, so a comparison loop allocates nothing after warm-up.
struct TargetView {
  std::vector<std::uint32_t> s2, w, index;
  std::vector<std::uint64_t> plane;

  TargetSpan build(const Sdbf& b, bool skip_sparse) {
    const std::size_t nb = b.filter_count();
    const std::size_t cap = round_up_lanes(nb);
    if (s2.size() < cap) {
      s2.resize(cap);
      w.resize(cap);
      index.resize(cap);
      plane.resize(4 * cap);
    }
    std::size_t n = 0;
    for (std::size_t j = 0; j < nb; ++j) {
      if (skip_sparse && b.element_count(j) < kSparseElements) continue;
      index[n++] = static_cast<std::uint32_t>(j);
    }
    fill_lanes(b, index.data(), n, s2.data(), w.data(), plane.data());
    return {s2.data(), w.data(), index.data(), plane.data(), round_up_lanes(n), n};
  }
};

#if defined(__x86_64__)
#define HASHSIEVE_HAVE_AVX512_KERNEL 1

// GCC 12's AVX-512 intrinsics start from _mm512_undefined_*(), which trips a
// false -Wmaybe-uninitialized once inlined; nothing here reads undefined lanes.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

// best() for one reference filter over a TargetSpan. Stage 1 of the early
// exit and the cut-off are evaluated for 16 targets at once; a target whose
// stage-1 test does not exit (or whose cut is 0, which disables the early
// exit) is recomputed by the scalar code, so results are identical by
// construction. Requires n > 0 (then best >= 0).
__attribute__((target("avx512f,avx512vpopcntdq,popcnt"))) double best_avx512(const std::uint64_t* a,
                                                                               std::uint32_t s1, std::uint32_t wa,
                                                                               const Sdbf& b, const TargetSpan& v) {
  const std::int32_t* row = expected_table().v[s1];
  const __m512i a0 = _mm512_set1_epi64(static_cast<long long>(a[0]));
  const __m512i a1 = _mm512_set1_epi64(static_cast<long long>(a[1]));
  const __m512i a2 = _mm512_set1_epi64(static_cast<long long>(a[2]));
  const __m512i a3 = _mm512_set1_epi64(static_cast<long long>(a[3]));
  const __m512i vwa = _mm512_set1_epi32(static_cast<int>(wa));
  const __m512i five = _mm512_set1_epi32(5);
  const __m512i magic = _mm512_set1_epi32(52429);
  const __m512i slack = _mm512_set1_epi32(48);
  const std::uint64_t* p0 = v.plane;
  const std::uint64_t* p1 = p0 + v.stride;
  const std::uint64_t* p2 = p1 + v.stride;
  const std::uint64_t* p3 = p2 + v.stride;
  double best = 0.0;
  for (std::size_t j = 0; j < v.n; j += kLanes) {
    const std::size_t left = v.n - j;
    const auto valid = static_cast<__mmask16>(left >= kLanes ? 0xFFFFu : (1u << left) - 1u);
    __m512i lo8 = _mm512_popcnt_epi64(_mm512_and_si512(_mm512_loadu_si512(p0 + j), a0));
    lo8 = _mm512_add_epi64(lo8, _mm512_popcnt_epi64(_mm512_and_si512(_mm512_loadu_si512(p1 + j), a1)));
    lo8 = _mm512_add_epi64(lo8, _mm512_popcnt_epi64(_mm512_and_si512(_mm512_loadu_si512(p2 + j), a2)));
    lo8 = _mm512_add_epi64(lo8, _mm512_popcnt_epi64(_mm512_and_si512(_mm512_loadu_si512(p3 + j), a3)));
    __m512i hi8 = _mm512_popcnt_epi64(_mm512_and_si512(_mm512_loadu_si512(p0 + j + 8), a0));
    hi8 = _mm512_add_epi64(hi8, _mm512_popcnt_epi64(_mm512_and_si512(_mm512_loadu_si512(p1 + j + 8), a1)));
    hi8 = _mm512_add_epi64(hi8, _mm512_popcnt_epi64(_mm512_and_si512(_mm512_loadu_si512(p2 + j + 8), a2)));
    hi8 = _mm512_add_epi64(hi8, _mm512_popcnt_epi64(_mm512_and_si512(_mm512_loadu_si512(p3 + j + 8), a3)));
    const __m512i c1 = _mm512_inserti64x4(_mm512_castsi256_si512(_mm512_cvtepi64_epi32(lo8)),
                                          _mm512_cvtepi64_epi32(hi8), 1);

    const __m512i s2 = _mm512_loadu_si512(v.s2 + j);
    const __m512i hi = _mm512_min_epu32(_mm512_loadu_si512(v.w + j), vwa);
    const __m512i lo = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), valid, s2, row, 4);
    const __mmask16 hi_ge_lo = _mm512_mask_cmpge_epu32_mask(valid, hi, lo);
    const __m512i d = _mm512_sub_epi32(hi, lo);
    const __m512i t = _mm512_add_epi32(_mm512_add_epi32(d, _mm512_slli_epi32(d, 1)), five);
    const __m512i cut = _mm512_add_epi32(lo, _mm512_srli_epi32(_mm512_mullo_epi32(t, magic), 19));
    const __m512i lhs = _mm512_add_epi32(_mm512_slli_epi32(c1, 3), slack);
    // Stage 1 exits (score 0) when 8*c + 48 < cut; hi < lo also means 0.
    __mmask16 survivors = _mm512_mask_cmpge_epu32_mask(hi_ge_lo, lhs, cut);
    while (survivors != 0) {
      const auto lane = static_cast<std::size_t>(std::countr_zero(static_cast<unsigned>(survivors)));
      survivors = static_cast<__mmask16>(survivors & (survivors - 1));
      const std::size_t jj = j + lane;
      const std::uint32_t h = std::min(wa, v.w[jj]);
      const auto l = static_cast<std::uint32_t>(row[v.s2[jj]]);
      best = std::max(best, filter_pair_score(a, b.filter_words(v.index[jj]), l, h));
    }
  }
  return best;
}
#pragma GCC diagnostic pop

bool cpu_has_popcnt() { return __builtin_cpu_supports("popcnt"); }
bool cpu_has_avx512() {
  return cpu_has_popcnt() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vpopcntdq");
}
#else
bool cpu_has_popcnt() { return false; }
bool cpu_has_avx512() { return false; }
#endif

std::atomic<CompareKernel> g_kernel{CompareKernel::automatic};

CompareKernel resolve_kernel() {
  static const CompareKernel best = cpu_has_avx512()   ? CompareKernel::avx512
                                    : cpu_has_popcnt() ? CompareKernel::popcnt
                                                       : CompareKernel::scalar;
  const CompareKernel k = g_kernel.load(std::memory_order_relaxed);
  return k == CompareKernel::automatic ? best : k;
}

// The spec 8.4 aggregation over the reference side's filters, with
// best(i, s1) supplied by the caller (only called for s1 >= 16 when some
// target is eligible). The running sum with its -1 sentinel is literal: a -1
// from best() can replace an accumulated total rather than add to it.
template <typename BestFn>
int aggregate(const Sdbf& a, bool any_eligible, BestFn&& best) {
  const std::size_t na = a.filter_count();
  double total = -1.0;
  std::size_t sparse = 0;
  for (std::size_t i = 0; i < na; ++i) {
    const std::uint32_t s1 = clamp_count(a.element_count(i));
    double m;
    if (s1 < kSparseElements) {
      m = 0.0;
      ++sparse;
    } else if (!any_eligible) {
      m = -1.0;
    } else {
      m = best(i, s1);
    }
    total = total < 0 ? m : total + m;
  }
  const std::size_t denom = na - (na > 1 ? sparse : 0);
  // denom == 0 is the reference's 0/0 crash; we report "not comparable".
  if (total < 0 || denom == 0) return -1;
  return static_cast<int>(std::round(100.0 * total / static_cast<double>(denom)));
}

// best() by the scalar kernels, scanning the target digest directly.
template <typename Kernel>
int aggregate_scalar(const Sdbf& a, const Sdbf& b, bool any_eligible, Kernel kernel) {
  const bool skip_sparse = a.filter_count() > 1;
  return aggregate(a, any_eligible, [&](std::size_t i, std::uint32_t s1) {
    return kernel(a.filter_words(i), s1, a.weight(i), b, skip_sparse);
  });
}

int aggregate_scalar_kernel(const Sdbf& a, const Sdbf& b, bool any_eligible, CompareKernel kernel) {
#if defined(__x86_64__)
  if (kernel != CompareKernel::scalar) return aggregate_scalar(a, b, any_eligible, best_popcnt);
#endif
  (void)kernel;
  return aggregate_scalar(a, b, any_eligible, best_portable);
}

// Scanning a span costs a fixed ~16-lane block; below this many target
// filters the scalar loop is as fast.
constexpr std::size_t kMinSimdTargets = 8;
// Building a per-pair view costs about one scan; it pays when reused.
constexpr std::uint64_t kMinSimdWorkUnprepared = 64;

bool orientation_swaps(const Sdbf& a, const Sdbf& b) {
  // Spec 8.2: the side with fewer filters is the reference; on a tie, the one
  // with the smaller last count - or the smaller name, which the reference
  // also lets override the count test. Not symmetric, on purpose.
  const std::size_t na = a.filter_count();
  const std::size_t nb = b.filter_count();
  if (na != nb) return na > nb;
  if (na == 0) return false;
  return a.element_count(na - 1) > b.element_count(nb - 1) || a.name().compare(b.name()) > 0;
}

std::size_t count_dense(const Sdbf& d) {
  std::size_t n = 0;
  for (std::size_t i = 0; i < d.filter_count(); ++i) n += d.element_count(i) >= kSparseElements ? 1 : 0;
  return n;
}

// score(A, B) with A already the reference side (spec 8.3-8.4).
int score_oriented(const Sdbf& a, const Sdbf& b, std::uint64_t* comparisons) {
  const std::size_t na = a.filter_count();
  const std::size_t nb = b.filter_count();
  if (na == 0 || nb == 0) return -1;
  // Sparse target filters are skipped only when the reference has > 1 filter.
  const bool skip_sparse = na > 1;
  const std::size_t eligible = skip_sparse ? count_dense(b) : nb;
  const std::uint64_t work = static_cast<std::uint64_t>(count_dense(a)) * eligible;
  if (comparisons != nullptr) *comparisons += work;
  const CompareKernel kernel = resolve_kernel();
#ifdef HASHSIEVE_HAVE_AVX512_KERNEL
  if (kernel == CompareKernel::avx512 && eligible >= kMinSimdTargets && work >= kMinSimdWorkUnprepared) {
    thread_local TargetView tls_view;
    const TargetSpan span = tls_view.build(b, skip_sparse);
    return aggregate(a, true, [&](std::size_t i, std::uint32_t s1) {
      return best_avx512(a.filter_words(i), s1, a.weight(i), b, span);
    });
  }
#endif
  return aggregate_scalar_kernel(a, b, eligible > 0, kernel);
}

}  // namespace

struct PreparedAccess {
  static std::size_t dense(const PreparedSdbf& p) { return p.dense_; }
  static TargetSpan span(const PreparedSdbf& p, bool dense_only) {
    return {p.counts_.data(), p.weights_.data(), p.index_.data(), p.plane_.data(), p.stride_,
            dense_only ? p.dense_ : p.digest_->filter_count()};
  }
  static void build(PreparedSdbf& p) {
    const Sdbf& d = *p.digest_;
    const std::size_t n = d.filter_count();
    p.stride_ = round_up_lanes(n);
    p.index_.assign(p.stride_, 0);
    p.counts_.resize(p.stride_);
    p.weights_.resize(p.stride_);
    p.plane_.resize(4 * p.stride_);
    // Dense filters first, so "dense targets only" is a prefix. best() is a
    // maximum, so the scan order does not matter.
    std::size_t k = 0;
    for (std::size_t j = 0; j < n; ++j) {
      if (d.element_count(j) >= kSparseElements) p.index_[k++] = static_cast<std::uint32_t>(j);
    }
    p.dense_ = static_cast<std::uint32_t>(k);
    for (std::size_t j = 0; j < n; ++j) {
      if (d.element_count(j) < kSparseElements) p.index_[k++] = static_cast<std::uint32_t>(j);
    }
    fill_lanes(d, p.index_.data(), n, p.counts_.data(), p.weights_.data(), p.plane_.data());
  }

  static int score_oriented(const PreparedSdbf& pa, const PreparedSdbf& pb, std::uint64_t* comparisons) {
    const Sdbf& a = pa.digest();
    const Sdbf& b = pb.digest();
    const std::size_t na = a.filter_count();
    const std::size_t nb = b.filter_count();
    if (na == 0 || nb == 0) return -1;
    const bool skip_sparse = na > 1;
    const std::size_t eligible = skip_sparse ? pb.dense_ : nb;
    if (comparisons != nullptr) *comparisons += static_cast<std::uint64_t>(pa.dense_) * eligible;
    const CompareKernel kernel = resolve_kernel();
#ifdef HASHSIEVE_HAVE_AVX512_KERNEL
    if (kernel == CompareKernel::avx512 && eligible >= kMinSimdTargets) {
      const TargetSpan span = PreparedAccess::span(pb, skip_sparse);
      return aggregate(a, true, [&](std::size_t i, std::uint32_t s1) {
        return best_avx512(a.filter_words(i), s1, a.weight(i), b, span);
      });
    }
#endif
    return aggregate_scalar_kernel(a, b, eligible > 0, kernel);
  }
};

namespace {
}  // namespace

std::uint32_t expected_common(std::uint32_t s1, std::uint32_t s2) {
  return static_cast<std::uint32_t>(expected_table().v[clamp_count(s1)][clamp_count(s2)]);
}

bool kernel_supported(CompareKernel kernel) {
  switch (kernel) {
    case CompareKernel::automatic:
    case CompareKernel::scalar:
      return true;
    case CompareKernel::popcnt:
      return cpu_has_popcnt();
    case CompareKernel::avx512:
#ifdef HASHSIEVE_HAVE_AVX512_KERNEL
      return cpu_has_avx512();
#else
      return false;
#endif
  }
  return false;
}

bool set_compare_kernel(CompareKernel kernel) {
  if (!kernel_supported(kernel)) return false;
  g_kernel.store(kernel, std::memory_order_relaxed);
  return true;
}

CompareKernel compare_kernel() { return resolve_kernel(); }

}  // namespace sdbf_internal

int sdbf_score_counted(const Sdbf& a, const Sdbf& b, std::uint64_t* filter_comparisons) {
  return sdbf_internal::orientation_swaps(a, b) ? sdbf_internal::score_oriented(b, a, filter_comparisons)
                                                : sdbf_internal::score_oriented(a, b, filter_comparisons);
}

int sdbf_score(const Sdbf& a, const Sdbf& b) { return sdbf_score_counted(a, b, nullptr); }

PreparedSdbf::PreparedSdbf(const Sdbf& digest) : digest_(&digest) { sdbf_internal::PreparedAccess::build(*this); }

std::vector<PreparedSdbf> prepare_sdbfs(std::span<const Sdbf> digests) {
  std::vector<PreparedSdbf> out;
  out.reserve(digests.size());
  for (const Sdbf& d : digests) out.emplace_back(d);
  return out;
}

int sdbf_score_counted(const PreparedSdbf& a, const PreparedSdbf& b, std::uint64_t* filter_comparisons) {
  using sdbf_internal::PreparedAccess;
  return sdbf_internal::orientation_swaps(a.digest(), b.digest())
             ? PreparedAccess::score_oriented(b, a, filter_comparisons)
             : PreparedAccess::score_oriented(a, b, filter_comparisons);
}

int sdbf_score(const PreparedSdbf& a, const PreparedSdbf& b) { return sdbf_score_counted(a, b, nullptr); }

}  // namespace hashsieve::digest
