// SDBF comparison score (spec section 8), identical to sdhash 3.4.
//
// The score of a pair is decided by the reference's quirks: which side is
// iterated (orientation by filter count, last count and name), sparse-filter
// rules, an early exit in the common-bit count that really changes scores, and
// a running sum with a -1 sentinel. All of them are replicated literally.
//
// Kernels for best() (one reference filter against the target's filters):
//  * scalar / popcnt: the reference's loop, compiled without / with POPCNT.
//  * avx512, in place: one target at a time, one 64-byte vector per early-exit
//    stage (used when the reference side has few filters).
//  * avx512, lane layout: 16 targets at a time over filters transposed to
//    word-major order, all of 8.3 as lane masks (used for prepared digests
//    and for wide pairs). The cut-off is exact integer arithmetic and scores
//    are IEEE divisions, so every kernel gives bit-identical maxima.
//  * avx512, set rows (PreparedSdbfSet): when the reference side of a pair is
//    a single filter, the pair's score is round(100 * max over the target's
//    filters), and for two one-filter digests the per-filter value is the
//    same whichever side is the reference (only the sparse-reference test is
//    not). So a one-filter digest's row scores all target filters of the row
//    in one pass over a transposed plane of the set (per-lane final scores),
//    and a several-filter digest's row scores its one-filter targets 16 at a
//    time against each of its filters. This removes the per-pair cost that
//    dominated sets of mostly one-filter digests.
#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <cmath>
#include <memory>
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

// EXPECTED[s1][s2] == EXPECTED[s2][s1] (the formula is symmetric; the
// integers are, since no entry is near a rounding boundary). The row kernels
// score a one-filter pair once for both orientations and rely on this; they
// are only used when it holds.
bool expected_is_symmetric() {
  static const bool symmetric = [] {
    const ExpectedTable& t = expected_table();
    for (std::uint32_t s1 = 0; s1 < kExpectedSize; ++s1) {
      for (std::uint32_t s2 = 0; s2 < s1; ++s2) {
        if (t.v[s1][s2] != t.v[s2][s1]) return false;
      }
    }
    return true;
  }();
  return symmetric;
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
// the SIMD kernel: element counts and weights as u32 lanes, and the filters
// transposed so that word k of 8 consecutive targets is one 64-byte vector
// (plane[k * stride + j]). Arrays hold a multiple of 16 lanes; lanes >= n are
// ignored.
struct TargetSpan {
  const std::uint32_t* s2;
  const std::uint32_t* w;
  const std::uint64_t* plane;  // kSdbfFilterWords rows of `stride` words
  // Per block of 16 lanes: the element count every lane of the block shares,
  // or -1. Lets the kernel broadcast one EXPECTED entry instead of gathering.
  const std::int32_t* uniform;
  std::size_t stride;
  std::size_t n;
};

constexpr std::size_t kLanes = 16;
inline std::size_t round_up_lanes(std::size_t n) { return (n + kLanes - 1) / kLanes * kLanes; }

// Lays out filters `order[0..n)` of `b` into arrays sized for
// round_up_lanes(n) lanes. Padding lanes repeat the last count (so they do not
// spoil a block's uniformity) with weight 0 and no bits; the kernel masks them.
void fill_lanes(const Sdbf& b, const std::uint32_t* order, std::size_t n, std::uint32_t* s2, std::uint32_t* w,
                std::uint64_t* plane, std::int32_t* uniform) {
  const std::size_t stride = round_up_lanes(n);
  for (std::size_t j = 0; j < stride; ++j) {
    if (j < n) {
      const std::uint32_t f = order[j];
      s2[j] = clamp_count(b.element_count(f));
      w[j] = b.weight(f);
      const std::uint64_t* words = b.filter_words(f);
      for (std::size_t k = 0; k < kSdbfFilterWords; ++k) plane[k * stride + j] = words[k];
    } else {
      s2[j] = n > 0 ? s2[n - 1] : 0;
      w[j] = 0;
      for (std::size_t k = 0; k < kSdbfFilterWords; ++k) plane[k * stride + j] = 0;
    }
  }
  for (std::size_t blk = 0; blk < stride / kLanes; ++blk) {
    const std::uint32_t* lane = s2 + blk * kLanes;
    bool same = true;
    for (std::size_t k = 1; k < kLanes; ++k) same = same && lane[k] == lane[0];
    uniform[blk] = same ? static_cast<std::int32_t>(lane[0]) : -1;
  }
}

}  // namespace

// Target filters in lane layout: dense filters (>= 16 elements) first, so
// "dense targets only" (spec 8.3, reference with > 1 filter) is a prefix;
// best() is a maximum, so the scan order does not matter. Used by
// PreparedSdbf and, rebuilt per pair, by sdbf_score on plain digests.
struct LaneLayout {
  std::size_t n = 0;
  std::size_t dense = 0;
  std::size_t stride = 0;
  std::vector<std::uint32_t> order, s2, w;
  std::vector<std::uint64_t> plane;
  std::vector<std::int32_t> uniform;

  void build(const Sdbf& b) {
    n = b.filter_count();
    stride = round_up_lanes(n);
    // Grow only: a thread-local layout is reused across pairs.
    if (order.size() < stride) {
      order.resize(stride);
      s2.resize(stride);
      w.resize(stride);
      plane.resize(kSdbfFilterWords * stride);
      uniform.resize(stride / kLanes);
    }
    // Largest counts first (a counting sort: no allocation): dense filters
    // form a prefix, and blocks of lanes tend to share one count (stream
    // digests: 160 everywhere but the last).
    std::array<std::uint32_t, kExpectedSize + 1> start{};
    for (std::size_t j = 0; j < n; ++j) ++start[kMaxCount - clamp_count(b.element_count(j)) + 1];
    for (std::size_t c = 1; c <= kExpectedSize; ++c) start[c] += start[c - 1];
    for (std::size_t j = 0; j < n; ++j) {
      order[start[kMaxCount - clamp_count(b.element_count(j))]++] = static_cast<std::uint32_t>(j);
    }
    dense = 0;
    while (dense < n && b.element_count(order[dense]) >= kSparseElements) ++dense;
    fill_lanes(b, order.data(), n, s2.data(), w.data(), plane.data(), uniform.data());
  }

  TargetSpan span(bool dense_only) const {
    return {s2.data(), w.data(), plane.data(), uniform.data(), stride, dense_only ? dense : n};
  }
};

namespace {

#if defined(__x86_64__)
#define HASHSIEVE_HAVE_AVX512_KERNEL 1

// GCC 12's AVX-512 intrinsics start from _mm512_undefined_*(), which trips a
// false -Wmaybe-uninitialized once inlined; nothing here reads undefined lanes.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif

#define HASHSIEVE_AVX512 __attribute__((target("avx512f,avx512vpopcntdq,popcnt")))

// Adds popcount(a[k] & plane row k) over rows [from, to) for lanes j..j+15
// to the two 8-lane u64 accumulators.
// Word k of the reference filter is broadcast from memory at its use (an
// embedded-broadcast operand), rather than kept in 32 vectors that spill.
HASHSIEVE_AVX512 inline void accumulate_rows(const std::uint64_t* a, const std::uint64_t* plane, std::size_t stride,
                                             std::size_t j, std::size_t from, std::size_t to, __m512i& lo,
                                             __m512i& hi) {
  for (std::size_t k = from; k < to; ++k) {
    const std::uint64_t* row = plane + k * stride + j;
    const __m512i ak = _mm512_set1_epi64(static_cast<long long>(a[k]));
    lo = _mm512_add_epi64(lo, _mm512_popcnt_epi64(_mm512_and_si512(_mm512_loadu_si512(row), ak)));
    hi = _mm512_add_epi64(hi, _mm512_popcnt_epi64(_mm512_and_si512(_mm512_loadu_si512(row + 8), ak)));
  }
}

HASHSIEVE_AVX512 inline __m512i narrow_counts(__m512i lo, __m512i hi) {
  return _mm512_inserti64x4(_mm512_castsi256_si512(_mm512_cvtepi64_epi32(lo)), _mm512_cvtepi64_epi32(hi), 1);
}

// best() for one reference filter over a TargetSpan, 16 targets at a time,
// the whole of spec 8.3 in vector form: the cut-off in exact integer form,
// common_bits with its three early-exit stages as lane masks (a block stops
// loading words once every lane has exited), and the score as an IEEE double
// division, which is exact, so the maximum equals the scalar code's.
// Requires n > 0 (then best >= 0).
HASHSIEVE_AVX512 double best_avx512(const std::uint64_t* a_words, std::uint32_t s1, std::uint32_t wa,
                                    const TargetSpan& v) {
  const std::int32_t* row = expected_table().v[s1];
  const std::uint64_t* a = a_words;
  const __m512i vwa = _mm512_set1_epi32(static_cast<int>(wa));
  const __m512i five = _mm512_set1_epi32(5);
  const __m512i magic = _mm512_set1_epi32(52429);
  const __m512i slack = _mm512_set1_epi32(48);
  __m512d best = _mm512_setzero_pd();
  for (std::size_t j = 0; j < v.n; j += kLanes) {
    const std::size_t left = v.n - j;
    const auto valid = static_cast<__mmask16>(left >= kLanes ? 0xFFFFu : (1u << left) - 1u);
    __m512i acc_lo = _mm512_setzero_si512();
    __m512i acc_hi = _mm512_setzero_si512();
    accumulate_rows(a, v.plane, v.stride, j, 0, 4, acc_lo, acc_hi);
    const __m512i c1 = narrow_counts(acc_lo, acc_hi);

    const __m512i hi = _mm512_min_epu32(_mm512_loadu_si512(v.w + j), vwa);
    const std::int32_t same = v.uniform[j / kLanes];
    const __m512i lo = same >= 0 ? _mm512_set1_epi32(row[same])
                                 : _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), valid,
                                                               _mm512_loadu_si512(v.s2 + j), row, 4);
    const __mmask16 hi_ge_lo = _mm512_mask_cmpge_epu32_mask(valid, hi, lo);
    const __m512i d = _mm512_sub_epi32(hi, lo);
    const __m512i t = _mm512_add_epi32(_mm512_add_epi32(d, _mm512_slli_epi32(d, 1)), five);
    const __m512i cut = _mm512_add_epi32(lo, _mm512_srli_epi32(_mm512_mullo_epi32(t, magic), 19));
    // A stage exits (score 0) when k*c + 48 < cut; with cut == 0 none can,
    // which is the reference's "no early exit when cut is 0". Lanes with
    // hi < lo score 0 as well.
    __mmask16 live = _mm512_mask_cmpge_epu32_mask(hi_ge_lo, _mm512_add_epi32(_mm512_slli_epi32(c1, 3), slack), cut);
    if (live == 0) continue;
    accumulate_rows(a, v.plane, v.stride, j, 4, 8, acc_lo, acc_hi);
    const __m512i c2 = narrow_counts(acc_lo, acc_hi);
    live = _mm512_mask_cmpge_epu32_mask(live, _mm512_add_epi32(_mm512_slli_epi32(c2, 2), slack), cut);
    if (live == 0) continue;
    accumulate_rows(a, v.plane, v.stride, j, 8, 16, acc_lo, acc_hi);
    const __m512i c3 = narrow_counts(acc_lo, acc_hi);
    live = _mm512_mask_cmpge_epu32_mask(live, _mm512_add_epi32(_mm512_slli_epi32(c3, 1), slack), cut);
    if (live == 0) continue;
    accumulate_rows(a, v.plane, v.stride, j, 16, kSdbfFilterWords, acc_lo, acc_hi);
    const __m512i c = narrow_counts(acc_lo, acc_hi);
    live = _mm512_mask_cmpgt_epu32_mask(live, c, cut);
    if (live == 0) continue;
    // s = (c - cut) / (hi - cut); hi >= c > cut on live lanes.
    const __m512i num = _mm512_sub_epi32(c, cut);
    const __m512i den = _mm512_sub_epi32(hi, cut);
    const auto live_lo = static_cast<__mmask8>(live & 0xFF);
    const auto live_hi = static_cast<__mmask8>(live >> 8);
    const __m512d s_lo = _mm512_maskz_div_pd(live_lo, _mm512_cvtepu32_pd(_mm512_castsi512_si256(num)),
                                             _mm512_cvtepu32_pd(_mm512_castsi512_si256(den)));
    const __m512d s_hi = _mm512_maskz_div_pd(live_hi, _mm512_cvtepu32_pd(_mm512_extracti64x4_epi64(num, 1)),
                                             _mm512_cvtepu32_pd(_mm512_extracti64x4_epi64(den, 1)));
    best = _mm512_max_pd(best, _mm512_max_pd(s_lo, s_hi));
  }
  return _mm512_reduce_max_pd(best);
}
// Sum of the four u64 lanes of a 256-bit vector.
HASHSIEVE_AVX512 inline std::uint32_t hsum4(__m256i v) {
  const __m128i x = _mm_add_epi64(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  return static_cast<std::uint32_t>(_mm_cvtsi128_si64(_mm_add_epi64(x, _mm_unpackhi_epi64(x, x))));
}

// best() for one reference filter scanning the target digest in place (no
// lane layout to build, so it suits a reference side with few filters): one
// 64-byte vector per stage, so a target that exits at stage 1 or 2 costs one
// cache line. Same rules and arithmetic as filter_pair_score.
HASHSIEVE_AVX512 double best_avx512_direct(const std::uint64_t* a_words, std::uint32_t s1, std::uint32_t wa,
                                           const Sdbf& b, bool skip_sparse) {
  const std::int32_t* row = expected_table().v[s1];
  const __m512i a0 = _mm512_loadu_si512(a_words);
  const __m512i a1 = _mm512_loadu_si512(a_words + 8);
  const __m512i a2 = _mm512_loadu_si512(a_words + 16);
  const __m512i a3 = _mm512_loadu_si512(a_words + 24);
  // Scores are >= 0, so "no eligible target" (-1) is the only other result.
  double best = 0.0;
  bool any = false;
  const std::size_t n = b.filter_count();
  // Targets are 256 bytes apart and a big digest does not fit in L2; fetch
  // ahead the line stage 1 reads.
  constexpr std::size_t kPrefetch = 8;
  for (std::size_t j = 0; j < n; ++j) {
    if (j + kPrefetch < n) _mm_prefetch(reinterpret_cast<const char*>(b.filter_words(j + kPrefetch)), _MM_HINT_T0);
    const std::uint32_t s2 = clamp_count(b.element_count(j));
    if (skip_sparse && s2 < kSparseElements) continue;
    any = true;
    const std::uint32_t hi = std::min(wa, b.weight(j));
    const auto lo = static_cast<std::uint32_t>(row[s2]);
    if (hi < lo) continue;
    const std::uint32_t cut = cut_off(lo, hi);
    const std::uint64_t* f = b.filter_words(j);
    const __m512i p0 = _mm512_popcnt_epi64(_mm512_and_si512(_mm512_loadu_si512(f), a0));
    const std::uint32_t c1 = hsum4(_mm512_castsi512_si256(p0));
    if (8 * c1 + 48 < cut) continue;
    // Past stage 1 the remaining stage tests are data-dependent coin flips
    // for mid-sized filters; evaluating them without branches is cheaper
    // than mispredicting them.
    const std::uint32_t c2 = c1 + hsum4(_mm512_extracti64x4_epi64(p0, 1));
    const __m512i p1 = _mm512_popcnt_epi64(_mm512_and_si512(_mm512_loadu_si512(f + 8), a1));
    const std::uint32_t c3 = c2 + static_cast<std::uint32_t>(_mm512_reduce_add_epi64(p1));
    const __m512i p23 = _mm512_add_epi64(_mm512_popcnt_epi64(_mm512_and_si512(_mm512_loadu_si512(f + 16), a2)),
                                         _mm512_popcnt_epi64(_mm512_and_si512(_mm512_loadu_si512(f + 24), a3)));
    const std::uint32_t c = c3 + static_cast<std::uint32_t>(_mm512_reduce_add_epi64(p23));
    const bool exits = (4 * c2 + 48 < cut) | (2 * c3 + 48 < cut) | (c <= cut);
    if (exits) continue;
    best = std::max(best, static_cast<double>(c - cut) / static_cast<double>(hi - cut));
  }
  return any ? best : -1.0;
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

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

// Boost's round() (half away from zero) for the score, 0 <= x <= 100: the
// truncation is exact and so is x - t, so this equals std::round without a
// libm call (the baseline x86-64 target has no rounding instruction).
inline int round_half_away(double x) {
  const auto t = static_cast<int>(x);
  return t + (x - static_cast<double>(t) >= 0.5 ? 1 : 0);
}

// The spec 8.4 aggregation over the reference side's filters, with
// best(i, s1) supplied by the caller (only called for s1 >= 16 when some
// target is eligible). The running sum with its -1 sentinel is literal: a -1
// from best() can replace an accumulated total rather than add to it.
//
// count(i) gives filter i's element count; both the Sdbf path and the packed
// per-filter data of PreparedSdbfSet go through this one loop.
template <typename CountFn, typename BestFn>
[[gnu::always_inline]] inline int aggregate_counts(std::size_t na, CountFn&& count, bool any_eligible,
                                                   BestFn&& best) {
  double total = -1.0;
  std::size_t sparse = 0;
  for (std::size_t i = 0; i < na; ++i) {
    const std::uint32_t s1 = count(i);
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
  // Most pairs share nothing; spare them the division.
  if (total == 0) return 0;
  return round_half_away(100.0 * total / static_cast<double>(denom));
}

template <typename BestFn>
int aggregate(const Sdbf& a, bool any_eligible, BestFn&& best) {
  return aggregate_counts(
      a.filter_count(), [&](std::size_t i) { return clamp_count(a.element_count(i)); }, any_eligible, best);
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
// Transposing a target digest for one pair costs several scans of it; with
// fewer dense reference filters (or a narrow target) the in-place scan is
// faster. Measured on the synthetic set and a 2,000-digest mix.
constexpr std::uint64_t kMinLayoutReferences = 8;
constexpr std::size_t kMinLayoutTargets = 16;

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
  if (kernel == CompareKernel::avx512 && eligible > 0 &&
      (work < kMinLayoutReferences * eligible || eligible < kMinLayoutTargets)) {
    // Few reference filters: scan the target in place.
    return aggregate(a, true, [&](std::size_t i, std::uint32_t s1) {
      return best_avx512_direct(a.filter_words(i), s1, a.weight(i), b, skip_sparse);
    });
  }
  if (kernel == CompareKernel::avx512 && eligible > 0) {
    // Many reference filters: transposing the target once pays off.
    thread_local LaneLayout tls_layout;
    tls_layout.build(b);
    const TargetSpan span = tls_layout.span(skip_sparse);
    return aggregate(a, true, [&](std::size_t i, std::uint32_t s1) {
      return best_avx512(a.filter_words(i), s1, a.weight(i), span);
    });
  }
#endif
  return aggregate_scalar_kernel(a, b, eligible > 0, kernel);
}

}  // namespace

struct PreparedAccess {
  static void build(PreparedSdbf& p) {
    auto layout = std::make_unique<LaneLayout>();
    layout->build(*p.digest_);
    p.dense_ = static_cast<std::uint32_t>(layout->dense);
    p.layout_ = std::move(layout);
  }
  static TargetSpan span(const PreparedSdbf& p, bool dense_only) { return p.layout_->span(dense_only); }

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
        return best_avx512(a.filter_words(i), s1, a.weight(i), span);
      });
    }
    if (kernel == CompareKernel::avx512 && eligible > 0) {
      return aggregate(a, true, [&](std::size_t i, std::uint32_t s1) {
        return best_avx512_direct(a.filter_words(i), s1, a.weight(i), b, skip_sparse);
      });
    }
#endif
    return aggregate_scalar_kernel(a, b, eligible > 0, kernel);
  }
};

// PreparedSdbfSet: every filter of a set in one 64-byte aligned arena (in
// each digest's own order, which the aggregation needs), one packed word of
// element count and weight per filter, and a small header per digest, so a
// pair of small digests touches a few adjacent cache lines and no Sdbf.
struct SetHeader {
  std::uint32_t first;  // index of the digest's first filter in the arena
  std::uint32_t n;      // filters
  std::uint32_t dense;  // filters with >= 16 elements
  std::uint32_t last;   // element_count(n - 1), unclamped (orientation)
  std::uint32_t rank;   // position of the name in the set's bytewise order
  std::int32_t wide;    // index into `wide`, or -1 if n < kMinSimdTargets
};

// Packed per-filter data: clamped element count | weight << 16.
inline std::uint32_t meta_count(std::uint32_t m) { return m & 0xFFFFu; }
inline std::uint32_t meta_weight(std::uint32_t m) { return m >> 16; }

// Filters of a set transposed for the row kernels: word k of filter f is
// plane[k * stride + f], so 16 consecutive filters' word k are one unaligned
// 128-byte load; count and weight per filter as u32 lanes. Rows are padded
// by kLanes zero lanes so a block starting at any filter stays inside.
struct FilterPlane {
  std::size_t n = 0;
  std::size_t stride = 0;
  std::vector<std::uint64_t> plane;
  std::vector<std::uint32_t> s2, w;

  void reserve(std::size_t filters) {
    n = filters;
    stride = round_up_lanes(filters) + kLanes;
    plane.assign(kSdbfFilterWords * stride, 0);
    s2.assign(stride, 0);
    w.assign(stride, 0);
  }
  void set(std::size_t f, const std::uint64_t* words, std::uint32_t count, std::uint32_t weight) {
    for (std::size_t k = 0; k < kSdbfFilterWords; ++k) plane[k * stride + f] = words[k];
    s2[f] = count;
    w[f] = weight;
  }
};

struct PreparedSetData {
  std::vector<const Sdbf*> digests;
  std::vector<SetHeader> headers;
  std::vector<std::uint32_t> meta;
  std::vector<std::uint64_t> storage;  // arena, over-allocated for alignment
  const std::uint64_t* words = nullptr;
  std::vector<PreparedSdbf> wide;
  // Row kernels (AVX-512): every filter of the set in set order, and the
  // filters of the one-filter digests only (lane t = the t-th such digest).
  // ones_before[j] = one-filter digests among 0..j-1, so the one-filter
  // targets of a row range are one contiguous run of lanes.
  FilterPlane all_filters;
  FilterPlane ones;
  std::vector<std::uint32_t> ones_before;
  // headers[j].last and .rank as arrays (kLanes of padding), for the
  // orientation of 16 one-filter pairs at once.
  std::vector<std::uint32_t> lasts, ranks;

  explicit PreparedSetData(std::span<const Sdbf> set) {
    std::size_t filters = 0;
    for (const Sdbf& d : set) filters += d.filter_count();
    digests.reserve(set.size());
    headers.reserve(set.size());
    meta.reserve(filters);
    storage.assign(filters * kSdbfFilterWords + 8, 0);
    auto* base = storage.data();
    while (reinterpret_cast<std::uintptr_t>(base) % 64 != 0) ++base;
    words = base;
    std::uint32_t next = 0;
    for (const Sdbf& d : set) {
      const std::size_t n = d.filter_count();
      SetHeader h{next, static_cast<std::uint32_t>(n), 0, d.last_count(), 0, -1};
      for (std::size_t f = 0; f < n; ++f) {
        const std::uint32_t s = clamp_count(d.element_count(f));
        h.dense += s >= kSparseElements ? 1 : 0;
        meta.push_back(s | std::min<std::uint32_t>(d.weight(f), 0xFFFFu) << 16);
        std::copy_n(d.filter_words(f), kSdbfFilterWords, base + (next + f) * kSdbfFilterWords);
      }
      if (n >= kMinSimdTargets) {
        h.wide = static_cast<std::int32_t>(wide.size());
        wide.emplace_back(d);
      }
      next += static_cast<std::uint32_t>(n);
      digests.push_back(&d);
      headers.push_back(h);
    }
    // Names compare as in the reference (bytewise, like strcmp); within one
    // set the comparison becomes a rank comparison.
    std::vector<std::uint32_t> order(set.size());
    for (std::uint32_t k = 0; k < order.size(); ++k) order[k] = k;
    std::sort(order.begin(), order.end(),
              [&](std::uint32_t x, std::uint32_t y) { return set[x].name().compare(set[y].name()) < 0; });
    std::uint32_t rank = 0;
    for (std::size_t k = 0; k < order.size(); ++k) {
      if (k > 0 && set[order[k - 1]].name().compare(set[order[k]].name()) != 0) ++rank;
      headers[order[k]].rank = rank;
    }
    build_planes();
  }

  static const PreparedSetData& of(const PreparedSdbfSet& s) { return *s.data_; }

 private:
  void build_planes() {
    // Only the AVX-512 row kernels read the planes.
    if (!cpu_has_avx512() || !expected_is_symmetric()) return;
    all_filters.reserve(meta.size());
    for (std::size_t f = 0; f < meta.size(); ++f) {
      all_filters.set(f, words + f * kSdbfFilterWords, meta_count(meta[f]), meta_weight(meta[f]));
    }
    ones_before.assign(headers.size() + 1, 0);
    for (std::size_t j = 0; j < headers.size(); ++j) ones_before[j + 1] = ones_before[j] + (headers[j].n == 1 ? 1 : 0);
    ones.reserve(ones_before.back());
    for (std::size_t j = 0; j < headers.size(); ++j) {
      if (headers[j].n != 1) continue;
      const std::uint32_t f = headers[j].first;
      ones.set(ones_before[j], words + std::size_t{f} * kSdbfFilterWords, meta_count(meta[f]), meta_weight(meta[f]));
    }
    lasts.assign(headers.size() + kLanes, 0);
    ranks.assign(headers.size() + kLanes, 0);
    for (std::size_t j = 0; j < headers.size(); ++j) {
      lasts[j] = headers[j].last;
      ranks[j] = headers[j].rank;
    }
  }
};

namespace {

// Spec 8.2 on the headers of two different sets (names compared as strings).
inline bool set_orientation_swaps(const PreparedSetData& A, std::size_t i, const PreparedSetData& B,
                                  std::size_t j) {
  const SetHeader& ha = A.headers[i];
  const SetHeader& hb = B.headers[j];
  if (ha.n != hb.n) return ha.n > hb.n;
  if (ha.n == 0) return false;
  if (ha.last > hb.last) return true;
  return A.digests[i]->name().compare(B.digests[j]->name()) > 0;
}

// aggregate() over packed per-filter data.
template <typename BestFn>
[[gnu::always_inline]] inline int aggregate_meta(const std::uint32_t* meta, std::size_t na, bool any_eligible,
                                                 BestFn&& best) {
  return aggregate_counts(
      na, [meta](std::size_t i) { return meta_count(meta[i]); }, any_eligible, best);
}

#ifdef HASHSIEVE_HAVE_AVX512_KERNEL
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
// Sums of lanes 0-3 and 4-7 of x, and of all lanes of y and z.
HASHSIEVE_AVX512 __attribute__((always_inline)) inline void stage_sums(__m512i p0, __m512i p1, __m512i p23,
                                                                      std::uint32_t& c1, std::uint32_t& c2,
                                                                      std::uint32_t& c3, std::uint32_t& c) {
  // Fold p1 and p23 together: even lanes p1, odd lanes p23.
  const __m512i t = _mm512_add_epi64(_mm512_unpacklo_epi64(p1, p23), _mm512_unpackhi_epi64(p1, p23));
  const __m256i u = _mm256_add_epi64(_mm512_castsi512_si256(t), _mm512_extracti64x4_epi64(t, 1));
  const __m128i w = _mm_add_epi64(_mm256_castsi256_si128(u), _mm256_extracti128_si256(u, 1));
  // p0 halves: sum lanes 0-3 and 4-7 as (lo, hi).
  const __m256i h0 = _mm512_castsi512_si256(p0);
  const __m256i h1 = _mm512_extracti64x4_epi64(p0, 1);
  const __m256i v = _mm256_add_epi64(_mm256_unpacklo_epi64(h0, h1), _mm256_unpackhi_epi64(h0, h1));
  const __m128i x = _mm_add_epi64(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  c1 = static_cast<std::uint32_t>(_mm_cvtsi128_si64(x));
  c2 = c1 + static_cast<std::uint32_t>(_mm_extract_epi64(x, 1));
  c3 = c2 + static_cast<std::uint32_t>(_mm_cvtsi128_si64(w));
  c = c3 + static_cast<std::uint32_t>(_mm_extract_epi64(w, 1));
}

// best() of one reference filter against a few target filters in the arena
// (at least one eligible, so the result is >= 0).
//
// Filters of small inputs hold few elements, and then the early exit cannot
// fire (8*c + 48 >= cut always), so on real sets about half the filter pairs
// are counted in full: all 256 bytes are counted up front and the stage tests
// applied afterwards (faster on the real mix than branching after stage 1). The best score is kept as an exact
// fraction (num, den) and divided once at the end: IEEE division is monotonic
// and correctly rounded, so that equals the maximum of the divisions.
struct Fraction {
  std::uint64_t num = 0;
  std::uint64_t den = 1;
};

HASHSIEVE_AVX512 __attribute__((always_inline)) inline Fraction best_fraction(const std::uint64_t* a, std::uint32_t s1,
                                                                             std::uint32_t wa,
                                                                             const std::uint32_t* meta,
                                                                             const std::uint64_t* words,
                                                                             std::size_t n, bool skip_sparse) {
  const std::int32_t* row = expected_table().v[s1];
  const __m512i a0 = _mm512_load_si512(a);
  const __m512i a1 = _mm512_load_si512(a + 8);
  const __m512i a2 = _mm512_load_si512(a + 16);
  const __m512i a3 = _mm512_load_si512(a + 24);
  std::uint64_t best_num = 0;
  std::uint64_t best_den = 1;
  for (std::size_t j = 0; j < n; ++j) {
    const std::uint32_t m = meta[j];
    const std::uint32_t s2 = meta_count(m);
    if (skip_sparse && s2 < kSparseElements) continue;
    const std::uint32_t hi = std::min(wa, meta_weight(m));
    const auto lo = static_cast<std::uint32_t>(row[s2]);
    const std::uint32_t cut = cut_off(lo, hi);
    const std::uint64_t* f = words + j * kSdbfFilterWords;
    const __m512i p0 = _mm512_popcnt_epi64(_mm512_and_si512(_mm512_load_si512(f), a0));
    const __m512i p1 = _mm512_popcnt_epi64(_mm512_and_si512(_mm512_load_si512(f + 8), a1));
    const __m512i p23 = _mm512_add_epi64(_mm512_popcnt_epi64(_mm512_and_si512(_mm512_load_si512(f + 16), a2)),
                                         _mm512_popcnt_epi64(_mm512_and_si512(_mm512_load_si512(f + 24), a3)));
    std::uint32_t c1, c2, c3, c;
    stage_sums(p0, p1, p23, c1, c2, c3, c);
    // hi < lo scores 0 (the reference's wrapped cut-off exceeds any count).
    const bool scores = (hi >= lo) & (8 * c1 + 48 >= cut) & (4 * c2 + 48 >= cut) & (2 * c3 + 48 >= cut) & (c > cut);
    const std::uint64_t num = scores ? c - cut : 0;
    const std::uint64_t den = scores ? hi - cut : 1;
    // num/den > best_num/best_den, exactly (all values <= 2048).
    const bool better = num * best_den > best_num * den;
    best_num = better ? num : best_num;
    best_den = better ? den : best_den;
  }
  return {best_num, best_den};
}

HASHSIEVE_AVX512 __attribute__((always_inline)) inline double best_arena(const std::uint64_t* a, std::uint32_t s1,
                                                                        std::uint32_t wa, const std::uint32_t* meta,
                                                                        const std::uint64_t* words, std::size_t n,
                                                                        bool skip_sparse) {
  const Fraction f = best_fraction(a, s1, wa, meta, words, n, skip_sparse);
  return f.num == 0 ? 0.0 : static_cast<double>(f.num) / static_cast<double>(f.den);
}

// One pair, A's digest the reference side, AVX-512 kernels.
HASHSIEVE_AVX512 __attribute__((always_inline)) inline int set_score_oriented_avx512(const PreparedSetData& A, std::size_t i,
                                                                            const PreparedSetData& B, std::size_t j,
                                                                            std::uint64_t* comparisons) {
  const SetHeader& ha = A.headers[i];
  const SetHeader& hb = B.headers[j];
  const std::size_t na = ha.n;
  const std::size_t nb = hb.n;
  if (na == 0 || nb == 0) return -1;
  const bool skip_sparse = na > 1;
  const std::size_t eligible = skip_sparse ? hb.dense : nb;
  if (comparisons != nullptr) *comparisons += static_cast<std::uint64_t>(ha.dense) * eligible;
  const std::uint32_t* ma = A.meta.data() + ha.first;
  const std::uint64_t* wa = A.words + static_cast<std::size_t>(ha.first) * kSdbfFilterWords;
  const std::uint32_t* mb = B.meta.data() + hb.first;
  const std::uint64_t* wb = B.words + static_cast<std::size_t>(hb.first) * kSdbfFilterWords;
  if (na == 1 && nb < kMinSimdTargets) {
    // A one-filter reference (any pair with a one-filter digest, i.e. most
    // pairs of a real set) against a few targets: every target is eligible,
    // the score is round(100 * best), or 0 for a sparse reference, with no
    // aggregation loop or running sum.
    const std::uint32_t s1 = meta_count(ma[0]);
    const bool dense = s1 >= kSparseElements;
    const Fraction f = best_fraction(wa, s1, meta_weight(ma[0]), mb, wb, nb, false);
    const int score = round_half_away(100.0 * (static_cast<double>(f.num) / static_cast<double>(f.den)));
    return dense ? score : 0;
  }
  if (eligible == 0) return aggregate_meta(ma, na, false, [](std::size_t, std::uint32_t) { return -1.0; });
  if (eligible >= kMinSimdTargets) {
    const TargetSpan span = PreparedAccess::span(B.wide[static_cast<std::size_t>(hb.wide)], skip_sparse);
    return aggregate_meta(ma, na, true, [&](std::size_t f, std::uint32_t s1) HASHSIEVE_AVX512 {
      return best_avx512(wa + f * kSdbfFilterWords, s1, meta_weight(ma[f]), span);
    });
  }
  return aggregate_meta(ma, na, true, [&](std::size_t f, std::uint32_t s1) HASHSIEVE_AVX512 {
    return best_arena(wa + f * kSdbfFilterWords, s1, meta_weight(ma[f]), mb, wb, nb, skip_sparse);
  });
}

// The per-filter score of one filter `a` (count s1, weight wa) against the
// filters [from, to) of a FilterPlane, 16 at a time: spec 8.3's cut-off,
// common_bits with its three early-exit stages and the normalised excess,
// as lane masks (the arithmetic of best_avx512), then as the pair's final
// score round_half_away(100 * s) (0 where the pair scores 0). Rounding and
// scaling are monotonic, so the maximum of these over a target's filters is
// the rounded maximum, i.e. the score of a one-filter reference side.
// Writes out[f - from] for every f in [from, to).
//
// The pair (a, f) gives the same value with either side as the reference
// (cut-off, counts and EXPECTED are symmetric): only the sparse-reference
// rule is not, and the callers apply it.
__attribute__((noinline)) HASHSIEVE_AVX512 void filter_scores_avx512(const std::uint64_t* a_words, std::uint32_t s1, std::uint32_t wa,
                                           const FilterPlane& p, std::size_t from, std::size_t to,
                                           std::uint8_t* out) {
  const std::int32_t* row = expected_table().v[s1];
  const std::uint64_t* a = a_words;
  const __m512i vwa = _mm512_set1_epi32(static_cast<int>(wa));
  const __m512i five = _mm512_set1_epi32(5);
  const __m512i magic = _mm512_set1_epi32(52429);
  const __m512i slack = _mm512_set1_epi32(48);
  const __m512d hundred = _mm512_set1_pd(100.0);
  const __m512d half = _mm512_set1_pd(0.5);
  const __m512d one = _mm512_set1_pd(1.0);
  for (std::size_t j = from; j < to; j += kLanes) {
    const std::size_t left = to - j;
    const auto valid = static_cast<__mmask16>(left >= kLanes ? 0xFFFFu : (1u << left) - 1u);
    std::uint8_t* dst = out + (j - from);
    __m512i acc_lo = _mm512_setzero_si512();
    __m512i acc_hi = _mm512_setzero_si512();
    accumulate_rows(a, p.plane.data(), p.stride, j, 0, 4, acc_lo, acc_hi);
    const __m512i c1 = narrow_counts(acc_lo, acc_hi);
    const __m512i hi = _mm512_min_epu32(_mm512_loadu_si512(p.w.data() + j), vwa);
    const __m512i lo = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), valid,
                                                   _mm512_loadu_si512(p.s2.data() + j), row, 4);
    const __mmask16 hi_ge_lo = _mm512_mask_cmpge_epu32_mask(valid, hi, lo);
    const __m512i d = _mm512_sub_epi32(hi, lo);
    const __m512i t = _mm512_add_epi32(_mm512_add_epi32(d, _mm512_slli_epi32(d, 1)), five);
    const __m512i cut = _mm512_add_epi32(lo, _mm512_srli_epi32(_mm512_mullo_epi32(t, magic), 19));
    __mmask16 live = _mm512_mask_cmpge_epu32_mask(hi_ge_lo, _mm512_add_epi32(_mm512_slli_epi32(c1, 3), slack), cut);
    if (live != 0) {
      accumulate_rows(a, p.plane.data(), p.stride, j, 4, 8, acc_lo, acc_hi);
      const __m512i c2 = narrow_counts(acc_lo, acc_hi);
      live = _mm512_mask_cmpge_epu32_mask(live, _mm512_add_epi32(_mm512_slli_epi32(c2, 2), slack), cut);
    }
    if (live != 0) {
      accumulate_rows(a, p.plane.data(), p.stride, j, 8, 16, acc_lo, acc_hi);
      const __m512i c3 = narrow_counts(acc_lo, acc_hi);
      live = _mm512_mask_cmpge_epu32_mask(live, _mm512_add_epi32(_mm512_slli_epi32(c3, 1), slack), cut);
    }
    __m512i score = _mm512_setzero_si512();
    if (live != 0) {
      accumulate_rows(a, p.plane.data(), p.stride, j, 16, kSdbfFilterWords, acc_lo, acc_hi);
      const __m512i c = narrow_counts(acc_lo, acc_hi);
      live = _mm512_mask_cmpgt_epu32_mask(live, c, cut);
      if (live != 0) {
        // s = (c - cut) / (hi - cut) with hi >= c > cut on live lanes, then
        // round_half_away(100 * s) exactly as the scalar code: truncate,
        // and add 1 when the remainder is >= 0.5.
        const __m512i num = _mm512_sub_epi32(c, cut);
        const __m512i den = _mm512_sub_epi32(hi, cut);
        __m256i r[2];
        for (int h = 0; h < 2; ++h) {
          const auto m = static_cast<__mmask8>(h == 0 ? live & 0xFF : live >> 8);
          const __m256i nh = h == 0 ? _mm512_castsi512_si256(num) : _mm512_extracti64x4_epi64(num, 1);
          const __m256i dh = h == 0 ? _mm512_castsi512_si256(den) : _mm512_extracti64x4_epi64(den, 1);
          const __m512d sc = _mm512_mul_pd(
              _mm512_maskz_div_pd(m, _mm512_cvtepu32_pd(nh), _mm512_cvtepu32_pd(dh)), hundred);
          const __m512d tr = _mm512_roundscale_pd(sc, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
          const __mmask8 up = _mm512_cmp_pd_mask(_mm512_sub_pd(sc, tr), half, _CMP_GE_OQ);
          r[h] = _mm512_cvttpd_epi32(_mm512_mask_add_pd(tr, up, tr, one));
        }
        score = _mm512_maskz_mov_epi32(live, _mm512_inserti64x4(_mm512_castsi256_si512(r[0]), r[1], 1));
      }
    }
    _mm512_mask_cvtepi32_storeu_epi8(dst, valid, score);
  }
}

// Spec 8.2 for a pair of one-filter digests (equal filter counts): whether
// B's digest j is the reference side of the pair (A's digest i, B's j).
inline bool one_filter_swaps(const PreparedSetData& A, std::size_t i, const PreparedSetData& B, std::size_t j) {
  const SetHeader& ha = A.headers[i];
  const SetHeader& hb = B.headers[j];
  if (&A == &B) return (ha.last > hb.last) | (ha.rank > hb.rank);
  return ha.last > hb.last || A.digests[i]->name().compare(B.digests[j]->name()) > 0;
}

// Rows whose reference side is always a single filter: A's digest i has one
// filter, so it is the reference against every target with more filters,
// and a one-filter target pair is scored once for both orientations. All
// target filters of the row are scored in one pass over B's filter plane;
// the per-target step only takes maxima and applies the sparse rules.
__attribute__((noinline)) HASHSIEVE_AVX512 void one_filter_row_avx512(const PreparedSetData& A, std::size_t i, const PreparedSetData& B,
                                            std::size_t first, std::span<int> out, std::uint64_t& comparisons) {
  const SetHeader& ha = A.headers[i];
  const std::uint32_t m = A.meta[ha.first];
  const std::uint32_t s1 = meta_count(m);
  const bool a_dense = s1 >= kSparseElements;
  const std::uint64_t* a = A.words + std::size_t{ha.first} * kSdbfFilterWords;
  const std::size_t end = first + out.size();
  thread_local std::vector<std::uint8_t> scores;
  if (a_dense) {
    // Every target filter of the row: B's filters from the first target's.
    const std::size_t f0 = B.headers[first].first;
    const SetHeader& hl = B.headers[end - 1];
    const std::size_t f1 = std::size_t{hl.first} + hl.n;
    if (scores.size() < f1 - f0 + kLanes) scores.resize(f1 - f0 + kLanes);
    filter_scores_avx512(a, s1, meta_weight(m), B.all_filters, f0, f1, scores.data());
    const std::uint8_t* s = scores.data() - f0;
    const __m512i vlast = _mm512_set1_epi32(static_cast<int>(ha.last));
    const __m512i vrank = _mm512_set1_epi32(static_cast<int>(ha.rank));
    const __m512i sparse_below = _mm512_set1_epi32(static_cast<int>(kSparseElements));
    for (std::size_t k = 0; k < out.size(); ++k) {
      const std::size_t j = first + k;
      const SetHeader& hb = B.headers[j];
      if (&A == &B && k + kLanes <= out.size() && B.ones_before[j + kLanes] - B.ones_before[j] == kLanes) {
        // 16 one-filter targets in a row (their filters are consecutive):
        // the loop below, as lane masks.
        const __mmask16 swap = _mm512_cmpgt_epu32_mask(vlast, _mm512_loadu_si512(B.lasts.data() + j)) |
                               _mm512_cmpgt_epu32_mask(vrank, _mm512_loadu_si512(B.ranks.data() + j));
        const __mmask16 sparse =
            _mm512_cmplt_epu32_mask(_mm512_loadu_si512(B.all_filters.s2.data() + hb.first), sparse_below);
        const __mmask16 keep = static_cast<__mmask16>(~(swap & sparse));
        const __m512i bytes = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s + hb.first)));
        _mm512_storeu_si512(out.data() + k, _mm512_maskz_mov_epi32(keep, bytes));
        comparisons += static_cast<std::uint64_t>(std::popcount(static_cast<unsigned>(keep)));
        k += kLanes - 1;
        continue;
      }
      int score;
      if (hb.n == 1) {
        // Symmetric score unless the target is the reference and sparse.
        const bool sparse_ref = one_filter_swaps(A, i, B, j) && hb.dense == 0;
        score = sparse_ref ? 0 : s[hb.first];
        comparisons += sparse_ref ? 0 : 1;
      } else if (hb.n == 0) {
        score = -1;  // the empty digest is the reference side
      } else {
        std::uint8_t best = 0;
        for (std::size_t f = hb.first; f < std::size_t{hb.first} + hb.n; ++f) best = std::max(best, s[f]);
        score = best;
        comparisons += hb.n;
      }
      out[k] = score;
    }
    return;
  }
  // A sparse reference scores 0, so only one-filter targets that become the
  // reference side (and are dense) need scoring: B's one-filter plane.
  const std::size_t o0 = B.ones_before[first];
  const std::size_t o1 = B.ones_before[end];
  if (scores.size() < o1 - o0 + kLanes) scores.resize(o1 - o0 + kLanes);
  if (o1 > o0) filter_scores_avx512(a, s1, meta_weight(m), B.ones, o0, o1, scores.data());
  for (std::size_t k = 0; k < out.size(); ++k) {
    const std::size_t j = first + k;
    const SetHeader& hb = B.headers[j];
    int score = hb.n == 0 ? -1 : 0;
    if (hb.n == 1 && hb.dense == 1 && one_filter_swaps(A, i, B, j)) {
      score = scores[B.ones_before[j] - o0];
      comparisons += 1;
    }
    out[k] = score;
  }
}

// The one-filter targets of a row whose digest has several filters: each
// such target is the reference side (fewer filters), its single filter
// scored against all of A's filters (a one-filter reference skips no target
// filter). 16 targets at a time from B's one-filter plane (one block stays
// in L1 while A's filters stream past it), the best score per lane kept as
// an exact fraction (see best_fraction) and rounded once per block.
// EXPECTED is symmetric, so lo is gathered from A's filter's row, once per
// run of equal counts (a stream digest's filters hold 160 but the last).
// Writes out[] for the one-filter targets only.
__attribute__((noinline)) HASHSIEVE_AVX512 void multi_vs_ones_avx512(const PreparedSetData& A, std::size_t i,
                                                                    const PreparedSetData& B, std::size_t first,
                                                                    std::span<int> out, std::uint64_t& comparisons) {
  const SetHeader& ha = A.headers[i];
  const std::size_t end = first + out.size();
  const std::size_t o0 = B.ones_before[first];
  const std::size_t o1 = B.ones_before[end];
  const FilterPlane& p = B.ones;
  const ExpectedTable& table = expected_table();
  thread_local std::vector<std::uint8_t> scores;
  if (scores.size() < o1 - o0 + kLanes) scores.resize(o1 - o0 + kLanes);
  const __m512i five = _mm512_set1_epi32(5);
  const __m512i magic = _mm512_set1_epi32(52429);
  const __m512i slack = _mm512_set1_epi32(48);
  const __m512d hundred = _mm512_set1_pd(100.0);
  const __m512d half = _mm512_set1_pd(0.5);
  const __m512d one = _mm512_set1_pd(1.0);
  for (std::size_t j = o0; j < o1; j += kLanes) {
    const std::size_t left = o1 - j;
    const auto valid = static_cast<__mmask16>(left >= kLanes ? 0xFFFFu : (1u << left) - 1u);
    const __m512i s2 = _mm512_loadu_si512(p.s2.data() + j);
    const __m512i w = _mm512_loadu_si512(p.w.data() + j);
    __m512i best_num = _mm512_setzero_si512();
    __m512i best_den = _mm512_set1_epi32(1);
    std::uint32_t lo_count = kExpectedSize;  // none yet
    __m512i lo = _mm512_setzero_si512();
    auto lo_for = [&](std::uint32_t count) HASHSIEVE_AVX512 {
      if (count != lo_count) {
        lo_count = count;
        lo = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), valid, s2, table.v[lo_count], 4);
      }
      return lo;
    };
    // G of A's filters against the block at once: each plane vector loaded
    // is used G times. Blocks of 16 different targets rarely exit as a
    // whole, so the stages are evaluated without branches.
    auto step = [&]<int G>(std::size_t f0) HASHSIEVE_AVX512 {
      __m512i cut[G], hi[G], acc_lo[G], acc_hi[G];
      __mmask16 live[G];
      const std::uint64_t* fw[G];
      for (int g = 0; g < G; ++g) {
        const std::uint32_t m = A.meta[f0 + g];
        const __m512i lo_g = lo_for(meta_count(m));
        fw[g] = A.words + (f0 + g) * kSdbfFilterWords;
        hi[g] = _mm512_min_epu32(w, _mm512_set1_epi32(static_cast<int>(meta_weight(m))));
        live[g] = _mm512_mask_cmpge_epu32_mask(valid, hi[g], lo_g);
        const __m512i d = _mm512_sub_epi32(hi[g], lo_g);
        const __m512i t = _mm512_add_epi32(_mm512_add_epi32(d, _mm512_slli_epi32(d, 1)), five);
        cut[g] = _mm512_add_epi32(lo_g, _mm512_srli_epi32(_mm512_mullo_epi32(t, magic), 19));
        acc_lo[g] = _mm512_setzero_si512();
        acc_hi[g] = _mm512_setzero_si512();
      }
      auto rows = [&](std::size_t from, std::size_t to) HASHSIEVE_AVX512 {
        for (std::size_t k = from; k < to; ++k) {
          const std::uint64_t* r = p.plane.data() + k * p.stride + j;
          const __m512i x = _mm512_loadu_si512(r);
          const __m512i y = _mm512_loadu_si512(r + 8);
          for (int g = 0; g < G; ++g) {
            const __m512i a = _mm512_set1_epi64(static_cast<long long>(fw[g][k]));
            acc_lo[g] = _mm512_add_epi64(acc_lo[g], _mm512_popcnt_epi64(_mm512_and_si512(x, a)));
            acc_hi[g] = _mm512_add_epi64(acc_hi[g], _mm512_popcnt_epi64(_mm512_and_si512(y, a)));
          }
        }
      };
      auto stage = [&](int shift) HASHSIEVE_AVX512 {
        for (int g = 0; g < G; ++g) {
          const __m512i c = narrow_counts(acc_lo[g], acc_hi[g]);
          live[g] = _mm512_mask_cmpge_epu32_mask(live[g], _mm512_add_epi32(_mm512_sll_epi32(c, _mm_cvtsi32_si128(shift)), slack),
                                                 cut[g]);
        }
      };
      rows(0, 4);
      stage(3);
      rows(4, 8);
      stage(2);
      rows(8, 16);
      stage(1);
      rows(16, kSdbfFilterWords);
      for (int g = 0; g < G; ++g) {
        const __m512i c = narrow_counts(acc_lo[g], acc_hi[g]);
        const __mmask16 l = _mm512_mask_cmpgt_epu32_mask(live[g], c, cut[g]);
        // num/den > best_num/best_den, exactly (all values <= 2048).
        const __m512i num = _mm512_sub_epi32(c, cut[g]);
        const __m512i den = _mm512_sub_epi32(hi[g], cut[g]);
        const __mmask16 better =
            _mm512_mask_cmpgt_epu32_mask(l, _mm512_mullo_epi32(num, best_den), _mm512_mullo_epi32(best_num, den));
        best_num = _mm512_mask_mov_epi32(best_num, better, num);
        best_den = _mm512_mask_mov_epi32(best_den, better, den);
      }
    };
    const std::size_t fend = std::size_t{ha.first} + ha.n;
    std::size_t f = ha.first;
    for (; f + 2 <= fend; f += 2) step.template operator()<2>(f);
    if (f < fend) step.template operator()<1>(f);
    const __mmask16 any = _mm512_mask_cmpneq_epu32_mask(valid, best_num, _mm512_setzero_si512());
    __m256i r[2];
    for (int h = 0; h < 2; ++h) {
      const auto m = static_cast<__mmask8>(h == 0 ? any & 0xFF : any >> 8);
      const __m256i nh = h == 0 ? _mm512_castsi512_si256(best_num) : _mm512_extracti64x4_epi64(best_num, 1);
      const __m256i dh = h == 0 ? _mm512_castsi512_si256(best_den) : _mm512_extracti64x4_epi64(best_den, 1);
      const __m512d sc = _mm512_mul_pd(_mm512_maskz_div_pd(m, _mm512_cvtepu32_pd(nh), _mm512_cvtepu32_pd(dh)), hundred);
      const __m512d tr = _mm512_roundscale_pd(sc, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
      const __mmask8 up = _mm512_cmp_pd_mask(_mm512_sub_pd(sc, tr), half, _CMP_GE_OQ);
      r[h] = _mm512_cvttpd_epi32(_mm512_mask_add_pd(tr, up, tr, one));
    }
    const __m512i score = _mm512_maskz_mov_epi32(any, _mm512_inserti64x4(_mm512_castsi256_si512(r[0]), r[1], 1));
    _mm512_mask_cvtepi32_storeu_epi8(scores.data() + (j - o0), valid, score);
  }
  for (std::size_t k = 0; k < out.size(); ++k) {
    const std::size_t j = first + k;
    const SetHeader& hb = B.headers[j];
    if (hb.n != 1) continue;
    const bool dense = hb.dense == 1;
    out[k] = dense ? scores[B.ones_before[j] - o0] : 0;
    comparisons += dense ? ha.n : 0;
  }
}

// Below this many one-filter targets in a row, the per-pair path is as fast.
constexpr std::size_t kMinOnesPerRow = 4;

// Measured and not kept: pairs of two digests with 2-7 filters each scored
// from a table of per-filter fractions (row filter x target filter, filled
// 16 lanes at a time from a plane of those digests' filters). No faster on
// the mix: such pairs cost their aggregation (a division per reference
// filter, the running sum) and orientation, not the bit counting.

HASHSIEVE_AVX512 void set_row_avx512(const PreparedSetData& A, std::size_t i, const PreparedSetData& B,
                                     std::size_t first, std::span<int> out, std::uint64_t* comparisons) {
  // Accumulate locally: a store through `comparisons` per pair would be a
  // memory round trip the compiler cannot hoist.
  std::uint64_t n = 0;
  const bool planes = !B.ones_before.empty() && !out.empty();
  if (planes && A.headers[i].n == 1) {
    one_filter_row_avx512(A, i, B, first, out, n);
    if (comparisons != nullptr) *comparisons += n;
    return;
  }
  const bool ones_first =
      planes && A.headers[i].n > 1 && B.ones_before[first + out.size()] - B.ones_before[first] >= kMinOnesPerRow;
  if (ones_first) multi_vs_ones_avx512(A, i, B, first, out, n);
  if (&A == &B) {
    // Within one set the orientation is a few integer comparisons (names by
    // rank), with no Sdbf or string touched. (Forcing this, or the score
    // selection below, branch-free with opaque flags measured slower.)
    const SetHeader& ha = A.headers[i];
    for (std::size_t k = 0; k < out.size(); ++k) {
      const std::size_t j = first + k;
      const SetHeader& hb = A.headers[j];
      if (ones_first && hb.n == 1) continue;
      const bool tie = (ha.n != 0) & ((ha.last > hb.last) | (ha.rank > hb.rank));
      const bool swap = (ha.n > hb.n) | ((ha.n == hb.n) & tie);
      const std::size_t r = swap ? j : i;
      const std::size_t t = swap ? i : j;
      out[k] = set_score_oriented_avx512(A, r, A, t, &n);
    }
  } else {
    for (std::size_t k = 0; k < out.size(); ++k) {
      const std::size_t j = first + k;
      if (ones_first && B.headers[j].n == 1) continue;
      out[k] = set_orientation_swaps(A, i, B, j) ? set_score_oriented_avx512(B, j, A, i, &n)
                                                 : set_score_oriented_avx512(A, i, B, j, &n);
    }
  }
  if (comparisons != nullptr) *comparisons += n;
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
#endif

void set_row(const PreparedSetData& A, std::size_t i, const PreparedSetData& B, std::size_t first,
             std::span<int> out, std::uint64_t* comparisons) {
  const CompareKernel kernel = resolve_kernel();
#ifdef HASHSIEVE_HAVE_AVX512_KERNEL
  if (kernel == CompareKernel::avx512) {
    set_row_avx512(A, i, B, first, out, comparisons);
    return;
  }
#endif
  // The scalar kernels gain little from the arena; they keep the plain path.
  (void)kernel;
  for (std::size_t k = 0; k < out.size(); ++k) {
    out[k] = sdbf_score_counted(*A.digests[i], *B.digests[first + k], comparisons);
  }
}

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
PreparedSdbf::~PreparedSdbf() = default;
PreparedSdbf::PreparedSdbf(PreparedSdbf&&) noexcept = default;
PreparedSdbf& PreparedSdbf::operator=(PreparedSdbf&&) noexcept = default;

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

PreparedSdbfSet::PreparedSdbfSet(std::span<const Sdbf> digests)
    : data_(std::make_unique<sdbf_internal::PreparedSetData>(digests)) {}
PreparedSdbfSet::~PreparedSdbfSet() = default;
PreparedSdbfSet::PreparedSdbfSet(PreparedSdbfSet&&) noexcept = default;
PreparedSdbfSet& PreparedSdbfSet::operator=(PreparedSdbfSet&&) noexcept = default;
std::size_t PreparedSdbfSet::size() const { return data_->digests.size(); }
const Sdbf& PreparedSdbfSet::digest(std::size_t i) const { return *data_->digests[i]; }

void sdbf_score_row(const PreparedSdbfSet& a, std::size_t i, const PreparedSdbfSet& b, std::size_t first,
                    std::span<int> out, std::uint64_t* filter_comparisons) {
  using sdbf_internal::PreparedSetData;
  sdbf_internal::set_row(PreparedSetData::of(a), i, PreparedSetData::of(b), first, out, filter_comparisons);
}

int sdbf_score_counted(const PreparedSdbfSet& a, std::size_t i, const PreparedSdbfSet& b, std::size_t j,
                       std::uint64_t* filter_comparisons) {
  int score = 0;
  sdbf_score_row(a, i, b, j, std::span<int>(&score, 1), filter_comparisons);
  return score;
}

int sdbf_score(const PreparedSdbfSet& a, std::size_t i, const PreparedSdbfSet& b, std::size_t j) {
  return sdbf_score_counted(a, i, b, j, nullptr);
}

}  // namespace hashsieve::digest
