// Entropy ranks and popularity scores (spec sections 2 and 3).
//
// Ranks: the reference slides a byte histogram; here the same exact integer
// sum is kept from per-position counts found with byte compares (AVX-512
// path), or by four interleaved sliding histograms (portable path).
//
// Scores: the reference's popularity scan re-scans a whole 64-position window
// every time its "cheap slide" shortcut gives up, which is most of its run
// time. The shortcut is kept literally (its quirks decide the output). What a
// full evaluation of the window [i, i+63] computes, when rank[i] != 0, has a
// closed form:
//   mr = the smallest non-zero rank in the window,
//   mp = the end of the run of equal ranks that starts at the FIRST position
//        holding mr, clipped to the window,
// and when rank[i] == 0 it scores nothing and leaves mr = 0 (spec 3, notes).
// The portable path evaluates the closed form with a scalar pass. The
// AVX-512 path precomputes (mr, mp) for every window of a 2048-window tile
// with vector passes (sliding-window-minimum keys and run lengths, both by
// doubling), so the serial scan only looks the answer up, and runs the
// shortcut 32 steps at a time on compare masks. The tests check every path
// against a literal transcription of the spec on random and low-entropy data.
#include "sdbf_scan.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cstring>

#include "sdbf_tables.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define HASHSIEVE_SCAN_X86 1
#endif

namespace hashsieve::digest {
namespace {

// Entropy deltas when a byte value's count goes from c to c+1 (kInc[c]) or
// from c to c-1 (kDec[c]); exact integer arithmetic, so the incremental sum
// equals a full recount at every position.
struct EntropyDeltas {
  std::array<std::int32_t, 66> inc{};
  std::array<std::int32_t, 66> dec{};
};
EntropyDeltas make_deltas() {
  EntropyDeltas d;
  for (int c = 0; c < 64; ++c) {
    d.inc[c] = static_cast<std::int32_t>(kSdbfEntropy64[c + 1]) -
               static_cast<std::int32_t>(kSdbfEntropy64[c]);
  }
  for (int c = 1; c <= 64; ++c) {
    d.dec[c] = static_cast<std::int32_t>(kSdbfEntropy64[c - 1]) -
               static_cast<std::int32_t>(kSdbfEntropy64[c]);
  }
  return d;
}
const EntropyDeltas kDeltas = make_deltas();

struct WindowMin {
  std::size_t mp;
  std::uint16_t mr;
};

// Full evaluation of [i, i+63] with rank[i] != 0 (scalar closed form).
[[gnu::always_inline]] inline WindowMin full_eval_scalar(const std::uint16_t* rank, std::size_t i) {
  const std::uint16_t* w = rank + i;
  // rank - 1 in 16-bit arithmetic maps 0 to 0xFFFF, so the unsigned minimum
  // ignores zeros; w[0] != 0 guarantees a non-zero minimum exists.
  std::uint16_t m1 = 0xFFFF;
  for (std::size_t j = 0; j < kSdbfWindow; ++j) {
    m1 = std::min(m1, static_cast<std::uint16_t>(w[j] - 1));
  }
  const std::uint16_t m = static_cast<std::uint16_t>(m1 + 1);
  std::size_t f = 0;
  while (w[f] != m) ++f;
  while (f + 1 < kSdbfWindow && w[f + 1] == m) ++f;
  return {i + f, m};
}

#if HASHSIEVE_SCAN_X86
#define HS_AVX512_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx2,sse4.1,bmi,bmi2,popcnt")))

// Window minima for many consecutive windows at once. A key packs the
// "zero as largest" rank (min(rank-1, 1023), 10 bits) above the position mod
// 64 (6 bits). Six doubling steps turn per-position keys into the key of the
// first minimum of each 64-wide window: at each step the left half wins ties
// (the comparison looks at the rank bits only), so the position kept is the
// first occurrence, and it is recovered exactly because a window spans
// exactly 64 positions.
constexpr std::size_t kKeyTile = 2048;

struct KeyTiles {
  alignas(64) std::uint16_t keys[kKeyTile + 128];
  std::size_t lo = 0, hi = 0;  // keys[] hold windows [lo, hi)
};

// Lanes k+S of the pair (a, b) (a first): the 16-bit lane shift that the
// doubling step with stride S needs, with cheap in-register alignments.
// (The all-ones maskz forms only avoid a GCC 12 false -Wmaybe-uninitialized
// in the plain intrinsics; they compile to the same instructions.)
template <int S>
HS_AVX512_TARGET inline __m512i words_ahead(__m512i a, __m512i b) {
  if constexpr (S == 1) {
    // a's 128-bit lanes moved down by one, b's first lane entering; then a
    // 2-byte shift within each 128-bit lane pair.
    return _mm512_alignr_epi8(_mm512_maskz_alignr_epi64(0xFF, b, a, 2), a, 2);
  } else if constexpr (S == 2) {
    return _mm512_maskz_alignr_epi32(0xFFFF, b, a, 1);
  } else if constexpr (S == 4) {
    return _mm512_maskz_alignr_epi64(0xFF, b, a, 1);
  } else if constexpr (S == 8) {
    return _mm512_maskz_alignr_epi64(0xFF, b, a, 2);
  } else if constexpr (S == 16) {
    return _mm512_maskz_alignr_epi64(0xFF, b, a, 4);
  } else {
    static_assert(S == 32);
    return b;
  }
}

// One doubling step: for each lane, the first minimum of the interval
// starting there (l) and of the adjacent one starting S lanes later (r);
// l wins ties, since only the rank bits take part in the comparison.
template <int S>
HS_AVX512_TARGET inline __m512i key_step(__m512i l, __m512i next) {
  const __m512i rank_bits = _mm512_set1_epi16(static_cast<short>(0xFFC0));
  const __m512i r = words_ahead<S>(l, next);
  return _mm512_mask_blend_epi16(_mm512_cmplt_epu16_mask(r, _mm512_and_si512(l, rank_bits)), l, r);
}

// The six doubling steps run in registers: level t+1 of vector w needs
// level t of vectors w and w+1, so each level lags the one below by one
// vector and the whole tile is one pass over the ranks that stores only the
// result. (Six passes over a key array in memory, each a load, an unaligned
// load and a store per vector, measured 6 % more time in the popularity
// scan alone, side by side, 2026-11-23.)
HS_AVX512_TARGET inline void fill_key_tile(const std::uint16_t* rank, std::size_t end,
                                               std::size_t base, KeyTiles& t) {
  const std::size_t n = std::min(kKeyTile, end - base);
  const std::size_t m = n + kSdbfWindow - 1;  // ranks base .. base+m-1 (< len)
  const __m512i one = _mm512_set1_epi16(1);
  const __m512i cap = _mm512_set1_epi16(1023);
  const __m512i lane = _mm512_set_epi16(31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 19, 18, 17, 16,
                                        15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
  const __m512i lane_hi = _mm512_add_epi16(lane, _mm512_set1_epi16(32));
  const __m512i pad = _mm512_set1_epi16(-1);
  const std::size_t out_vectors = (n + 31) / 32;
  __m512i p0 = pad, p1 = pad, p2 = pad, p3 = pad, p4 = pad, p5 = pad;
  for (std::size_t u = 0; u < out_vectors + 6; ++u) {
    const std::size_t j = 32 * u;
    __m512i x0 = pad;
    if (j < m) {
      const __mmask32 lm = m - j >= 32 ? ~__mmask32{0} : (__mmask32{1} << (m - j)) - 1;
      const __m512i r = _mm512_maskz_loadu_epi16(lm, rank + base + j);
      const __m512i v = _mm512_slli_epi16(_mm512_min_epu16(_mm512_sub_epi16(r, one), cap), 6);
      // base is a multiple of 64, so the position mod 64 is (j & 32) + lane.
      x0 = _mm512_or_si512(v, (j & 32) != 0 ? lane_hi : lane);
    }
    // x_t = level t of vector u - t; p_t = level t of vector u - t - 1.
    const __m512i x1 = key_step<1>(p0, x0);
    const __m512i x2 = key_step<2>(p1, x1);
    const __m512i x3 = key_step<4>(p2, x2);
    const __m512i x4 = key_step<8>(p3, x3);
    const __m512i x5 = key_step<16>(p4, x4);
    const __m512i x6 = key_step<32>(p5, x5);
    p0 = x0;
    p1 = x1;
    p2 = x2;
    p3 = x3;
    p4 = x4;
    p5 = x5;
    if (u >= 6) _mm512_store_si512(t.keys + 32 * (u - 6), x6);
  }
  t.lo = base;
  t.hi = base + n;
}

#endif

// The reference scan (spec 3) with the full evaluation supplied by EVAL. A
// macro rather than a template so that the AVX-512 evaluation can be inlined
// into a function compiled for that target.
#define HS_SDBF_SCORES_BODY(EVAL)                                                  \
  std::memset(score, 0, len);                                                      \
  if (len <= kSdbfWindow) return;                                                  \
  const std::size_t end = len - kSdbfWindow;                                       \
  std::size_t i = 0;                                                               \
  std::size_t mp = 0;                                                              \
  std::uint16_t mr = rank[0];                                                      \
  while (i < end) {                                                                \
    if (i > 0 && mr > 0) {                                                         \
      /* Cheap slide. rank[i+64] >= mr > 0 implies i + 64 < len - 64 (the last  \
         64 ranks are 0), so the reference's own bound on i never decides. */     \
      /* Hits on one mp are counted in a register: incrementing score[mp] per \
         step would chain every step through a store-to-load forward. */        \
      unsigned hits = 0;                                                           \
      while (rank[i + kSdbfWindow] >= mr && i < mp) {                              \
        if (rank[i + kSdbfWindow] == mr) {                                         \
          score[mp] = static_cast<std::uint8_t>(score[mp] + hits);                 \
          hits = 0;                                                                \
          mp = i + kSdbfWindow;                                                    \
        }                                                                          \
        ++hits;                                                                    \
        ++i;                                                                       \
      }                                                                            \
      score[mp] = static_cast<std::uint8_t>(score[mp] + hits);                     \
    }                                                                              \
    if (rank[i] == 0) {                                                            \
      /* A window starting on rank 0 scores nothing and leaves mr = 0, so the   \
         next position is fully evaluated as well. */                             \
      mr = 0;                                                                      \
      ++i;                                                                         \
      continue;                                                                    \
    }                                                                              \
    const WindowMin m = EVAL(rank, i);                                             \
    mp = m.mp;                                                                     \
    mr = m.mr;                                                                     \
    ++score[mp];                                                                   \
    ++i;                                                                           \
  }

}  // namespace

namespace {

// One sliding 64-byte window: byte counts and the entropy sum.
struct EntropyWindow {
  std::uint32_t count[256];
  std::int32_t ent;

  void start(const std::uint8_t* buf) {
    std::memset(count, 0, sizeof count);
    for (std::size_t k = 0; k < kSdbfWindow; ++k) ++count[buf[k]];
    ent = 0;
    for (std::uint32_t c : count) ent += static_cast<std::int32_t>(kSdbfEntropy64[c]);
  }
  // Slides from the window at buf[p] to buf[p+1] after emitting rank[p].
  // Branch-free: when the leaving and entering bytes are equal the two
  // deltas cancel exactly (E[c-1]-E[c] + E[c]-E[c-1]).
  [[gnu::always_inline]] inline void step(const std::uint8_t* buf, std::size_t p,
                                          std::uint16_t* rank) {
    rank[p] = kSdbfEntropyRanks[static_cast<std::uint32_t>(ent) >> 10];
    const std::uint8_t out = buf[p];
    const std::uint8_t in = buf[p + kSdbfWindow];
    ent += kDeltas.dec[count[out]];
    --count[out];
    ent += kDeltas.inc[count[in]];
    ++count[in];
  }
};

}  // namespace

void sdbf_ranks_portable(const std::uint8_t* buf, std::size_t len, std::uint16_t* rank) {
  if (len <= kSdbfWindow) {
    std::fill(rank, rank + len, std::uint16_t{0});
    return;
  }
  const std::size_t end = len - kSdbfWindow;
  // The count updates form a store-to-load chain through memory whenever the
  // same byte value repeats (zero runs in binaries). Four windows slide over
  // four quarters of the region in one loop, so four independent chains
  // overlap; the arithmetic is exact, so the split does not change a rank.
  constexpr std::size_t kLanes = 4;
  EntropyWindow w[kLanes];
  const std::size_t seg = end < 1024 ? 0 : end / kLanes;
  std::size_t base[kLanes];
  for (std::size_t l = 0; l < kLanes; ++l) {
    base[l] = l * seg;
    w[l].start(buf + base[l]);
  }
  for (std::size_t t = 0; t < seg; ++t) {
    for (std::size_t l = 0; l < kLanes; ++l) w[l].step(buf, base[l] + t, rank);
  }
  // The last lane finishes the remainder (all of it for small regions).
  for (std::size_t p = base[kLanes - 1] + seg; p < end; ++p) w[kLanes - 1].step(buf, p, rank);
  std::fill(rank + end, rank + len, std::uint16_t{0});
}

#if defined(__GNUC__) && !defined(__clang__)
// GCC's SLP vectoriser turns the rank pass's unrolled running sum into
// scalar-to-vector inserts and spills: 12 % more time in the pass than the
// plain scalar sequence (shift, table load, store, add from memory per
// position), side by side at -O3, 2026-11-23.
#define HS_NO_SLP_VECTORIZE __attribute__((optimize("no-tree-slp-vectorize")))
#else
#define HS_NO_SLP_VECTORIZE
#endif

#if HASHSIEVE_SCAN_X86
// Vector form of the same sum. With m(p) = occurrences of buf[p] in
// buf[p..p+63] and k(q) = occurrences of buf[q] in buf[q-63..q], sliding the
// window from p to p+1 changes the entropy by
//   (E[m(p)-1] - E[m(p)]) + (E[k(p+64)] - E[k(p+64)-1]),
// and both counts are plain per-position functions: 64 positions at a time
// they are 63 byte compares each, with no memory dependence between
// positions. Only the running sum itself stays scalar (one add per byte).
// Measured and not kept: the running sum as a vector prefix sum (with a
// scalar or a 16-permute table lookup), and unrolling the scalar loop or
// the compare loop further; the pass is bound by issue width, and each of
// those added work or code size. Nor (2026-11-23) writing the 32 ranks of
// a block to a local buffer with one vector store, the scalar loop fully
// unrolled: no difference. What did pay (12 % of this pass, 2026-11-23):
// the scalar loop unrolled with 32-bit deltas and GCC's SLP vectoriser off
// (HS_NO_SLP_VECTORIZE), five instructions per position. Also measured and
// not kept that day: the running sum as a vector prefix sum with the rank
// table read by AVX-512 gathers (10 % slower; Zen 4 gathers are slow), and
// 512-bit compares into mask registers with masked adds, 64 positions per
// block (19 % slower).
HS_AVX512_TARGET HS_NO_SLP_VECTORIZE void sdbf_ranks_avx512(const std::uint8_t* buf,
                                                            std::size_t len, std::uint16_t* rank) {
  if (len <= kSdbfWindow) {
    std::fill(rank, rank + len, std::uint16_t{0});
    return;
  }
  const std::size_t end = len - kSdbfWindow;
  // Delta tables indexed by count-1 (counts are 1..64), as 16-bit lanes.
  alignas(64) std::int16_t leave[64], enter[64];
  for (int c = 1; c <= 64; ++c) {
    leave[c - 1] = static_cast<std::int16_t>(kDeltas.dec[c]);
    enter[c - 1] = static_cast<std::int16_t>(kDeltas.inc[c - 1]);
  }
  const __m512i leave_lo = _mm512_load_si512(leave), leave_hi = _mm512_load_si512(leave + 32);
  const __m512i enter_lo = _mm512_load_si512(enter), enter_hi = _mm512_load_si512(enter + 32);
  std::int32_t ent;
  {
    std::uint32_t count[256] = {};
    for (std::size_t k = 0; k < kSdbfWindow; ++k) ++count[buf[k]];
    ent = 0;
    for (std::uint32_t c : count) ent += static_cast<std::int32_t>(kSdbfEntropy64[c]);
  }
  // 32-bit deltas: the running sum adds them straight from memory.
  alignas(64) std::int32_t delta[2][32];
  std::size_t pending_lanes = 0;
  // 32 positions per block in 256-bit vectors: byte compares that yield a
  // vector (0 / -1) and a subtract are full-rate 256-bit operations, while
  // 512-bit compares into mask registers run at a fraction of that.
  for (std::size_t p0 = 0; p0 < end; p0 += 32) {
    const std::size_t lanes = std::min<std::size_t>(32, end - p0);
    // Masked loads keep the last partial block inside the buffer: every
    // valid lane reads only buf[p0+lane .. p0+lane+64] (< len).
    const __mmask32 lm = lanes == 32 ? ~__mmask32{0} : (__mmask32{1} << lanes) - 1;
    __m256i cm = _mm256_setzero_si256(), ck = _mm256_setzero_si256();
    if (lanes == 32) {
      // Full block: buf[p0 .. p0+95] lies inside the buffer (p0+32 <= end),
      // so plain loads, which the compares can take as memory operands.
      const __m256i vm = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(buf + p0));
      const __m256i vk = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(buf + p0 + 64));
#pragma GCC unroll 9
      for (std::size_t d = 1; d < 64; ++d) {
        const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(buf + p0 + d));
        cm = _mm256_sub_epi8(cm, _mm256_cmpeq_epi8(vm, x));  // buf[p+d] == buf[p]
        ck = _mm256_sub_epi8(ck, _mm256_cmpeq_epi8(vk, x));  // buf[q-(64-d)] == buf[q]
      }
    } else {
      const __m256i vm = _mm256_maskz_loadu_epi8(lm, buf + p0);
      const __m256i vk = _mm256_maskz_loadu_epi8(lm, buf + p0 + 64);
      for (std::size_t d = 1; d < 64; ++d) {
        const __m256i x = _mm256_maskz_loadu_epi8(lm, buf + p0 + d);
        cm = _mm256_sub_epi8(cm, _mm256_cmpeq_epi8(vm, x));
        ck = _mm256_sub_epi8(ck, _mm256_cmpeq_epi8(vk, x));
      }
    }
    // cm, ck now hold count-1 (the position itself excluded): table indices.
    const __m512i im = _mm512_cvtepu8_epi16(cm);
    const __m512i ik = _mm512_cvtepu8_epi16(ck);
    const __m512i dl = _mm512_add_epi16(_mm512_permutex2var_epi16(leave_lo, im, leave_hi),
                                        _mm512_permutex2var_epi16(enter_lo, ik, enter_hi));
    // Software-pipelined: the running sum for the previous block runs
    // after this block's vector work, so its deltas were stored a whole
    // block earlier (no store-to-load forwarding stall from the wide store).
    if (pending_lanes != 0) {
      const std::int32_t* dp = delta[(p0 / 32 + 1) & 1];
      std::uint16_t* out = rank + p0 - 32;
#pragma GCC unroll 32
      for (std::size_t t = 0; t < 32; ++t) {
        out[t] = kSdbfEntropyRanks[static_cast<std::uint32_t>(ent) >> 10];
        ent += dp[t];
      }
    }
    // (The all-ones maskz forms only avoid GCC 12's false -Wmaybe-uninitialized.)
    _mm512_store_si512(delta[(p0 / 32) & 1],
                       _mm512_maskz_cvtepi16_epi32(0xFFFF, _mm512_maskz_extracti64x4_epi64(0xFF, dl, 0)));
    _mm512_store_si512(delta[(p0 / 32) & 1] + 16,
                       _mm512_maskz_cvtepi16_epi32(0xFFFF, _mm512_maskz_extracti64x4_epi64(0xFF, dl, 1)));
    pending_lanes = lanes;
  }
  if (pending_lanes != 0) {
    const std::size_t p0 = (end - 1) / 32 * 32;
    const std::int32_t* dp = delta[(p0 / 32) & 1];
    std::uint16_t* out = rank + p0;
    for (std::size_t t = 0; t < pending_lanes; ++t) {
      out[t] = kSdbfEntropyRanks[static_cast<std::uint32_t>(ent) >> 10];
      ent += dp[t];
    }
  }
  std::fill(rank + end, rank + len, std::uint16_t{0});
}
#else
void sdbf_ranks_avx512(const std::uint8_t* buf, std::size_t len, std::uint16_t* rank) {
  sdbf_ranks_portable(buf, len, rank);
}
#endif

void sdbf_ranks(const std::uint8_t* buf, std::size_t len, std::uint16_t* rank) {
  if (sdbf_scan_has_avx512()) {
    sdbf_ranks_avx512(buf, len, rank);
  } else {
    sdbf_ranks_portable(buf, len, rank);
  }
}

bool sdbf_scan_has_avx512() {
#if HASHSIEVE_SCAN_X86
  static const bool has = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                          __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vbmi") && __builtin_cpu_supports("avx2") &&
                          __builtin_cpu_supports("sse4.1") && __builtin_cpu_supports("bmi") &&
                          __builtin_cpu_supports("bmi2") && __builtin_cpu_supports("popcnt");
  return has;
#else
  return false;
#endif
}

void sdbf_scores_portable(const std::uint16_t* rank, std::size_t len, std::uint8_t* score) {
  HS_SDBF_SCORES_BODY(full_eval_scalar)
}

#if HASHSIEVE_SCAN_X86
#define HS_AVX512_SCAN_TARGET \
  __attribute__((target("avx512f,avx512bw,avx512vl,avx512vbmi,avx2,sse4.1,bmi,bmi2,popcnt")))

// Full-evaluation answers for a tile of window starts, computed before the
// serial scan needs them. The scan is one serial dependency chain (window
// start i -> window minimum -> where the shortcut exits -> next i); looking
// the answer up in a table takes the window-min key and the run-end search
// (load, compare, mask move, tzcnt) off that chain, and costs about one
// cycle per byte in vector work that has no dependence between windows.
//   mr2[j]: mr in both halves of a 32-bit word, so that a broadcast load
//           gives the compare operand of the cheap slide directly;
//   off[j]: mp - i (16-bit: stored straight from the 16-bit lanes).
// mp is the end of the run of equal ranks from the first minimum f, capped
// at i+63: with run[q] = how many of rank[base+q] == rank[base+q+1],
// rank[base+q+1] == rank[base+q+2], ... hold in a row (capped at 64),
// mp - i = min(f - i + run[f - base], 63). run[] is found by doubling, like
// the keys, and read per window with a 128-entry byte permute (f lies
// within 95 positions of the vector's first window).
// (Its six passes stay in memory: done in registers like the keys they
// measured the same, 2026-11-23.)
//   slide[]: bit j set when a full evaluation of window j is followed by at
//            least one step of the cheap slide (rank[j] != 0, mp > j + 1 and
//            rank[j + 65] >= mr); clear bits are windows after which the
//            next window is evaluated in full again (or skipped, rank 0);
//   nz[]:    bit j set when rank[j] != 0 (a full evaluation there scores).
// Both are read 64 bits at a time from any 32-bit word, hence the padding
// words (zero: no slide, no score past the tile).
constexpr std::size_t kTileWords = kKeyTile / 32;
struct FeTiles {
  KeyTiles keys;
  alignas(64) std::uint8_t run[kKeyTile + 256];
  alignas(64) std::uint32_t mr2[kKeyTile];
  // Padded with zeros past the tile's windows: the run credits read off[]
  // at up to 64 past the last window (countr_zero of an empty mask) and add
  // 0 at the position it names, which must lie inside the region.
  alignas(64) std::uint16_t off[kKeyTile + 128];
  alignas(64) std::uint32_t slide[kTileWords + 2];
  alignas(64) std::uint32_t nz[kTileWords + 2];
};

HS_AVX512_SCAN_TARGET inline void fill_fe_tile(const std::uint16_t* rank, std::size_t end,
                                               std::size_t base, FeTiles& t) {
  fill_key_tile(rank, end, base, t.keys);
  const std::size_t n = t.keys.hi - base;
  // run[q] for q < n + 63 compares rank[base+q] with rank[base+q+1]; the
  // last of those, base+n+63, is < len. Entries past that read as 1: runs
  // are cut there, which no window sees (mp is capped at i+63 <= base+n+62).
  const std::size_t m = n + kSdbfWindow - 1;
  const __m512i zero = _mm512_setzero_si512();
  const __m512i one = _mm512_set1_epi8(1);
  for (std::size_t q = 0; q < m; q += 64) {
    const std::size_t lanes = std::min<std::size_t>(64, m - q);
    const __mmask32 la = lanes >= 32 ? ~__mmask32{0} : (__mmask32{1} << lanes) - 1;
    const __mmask32 lb = lanes <= 32 ? 0
                         : lanes == 64 ? ~__mmask32{0}
                                       : (__mmask32{1} << (lanes - 32)) - 1;
    const std::uint16_t* r = rank + base + q;
    const __mmask32 ea = _mm512_mask_cmpeq_epi16_mask(la, _mm512_maskz_loadu_epi16(la, r),
                                                      _mm512_maskz_loadu_epi16(la, r + 1));
    const __mmask32 eb = _mm512_mask_cmpeq_epi16_mask(lb, _mm512_maskz_loadu_epi16(lb, r + 32),
                                                      _mm512_maskz_loadu_epi16(lb, r + 33));
    const __mmask64 e = _mm512_kunpackd(__mmask64{eb}, __mmask64{ea});
    _mm512_store_si512(t.run + q, _mm512_mask_blend_epi8(e, zero, one));
  }
  const std::size_t padded = (m + 63) / 64 * 64;
  for (std::size_t q = padded; q < padded + 192; q += 64) _mm512_store_si512(t.run + q, zero);
  for (std::size_t s = 1; s < kSdbfWindow; s *= 2) {
    const __m512i full = _mm512_set1_epi8(static_cast<char>(s));
    for (std::size_t q = 0; q < m; q += 64) {
      const __m512i l = _mm512_load_si512(t.run + q);
      const __m512i r = _mm512_loadu_si512(t.run + q + s);
      // s equalities in a row from q continue with those from q+s.
      const __mmask64 ext = _mm512_cmpeq_epi8_mask(l, full);
      _mm512_store_si512(t.run + q, _mm512_mask_add_epi8(l, ext, l, r));
    }
  }
  const __m512i lane = _mm512_set_epi16(31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 19, 18, 17,
                                        16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
  const __m512i six3 = _mm512_set1_epi16(63);
  const __m512i one16 = _mm512_set1_epi16(1);
  // Window k's mr into both halves of 32-bit word k (k < 16, then k >= 16).
  const __m512i dup_lo = _mm512_srli_epi16(lane, 1);
  const __m512i dup_hi = _mm512_add_epi16(dup_lo, _mm512_set1_epi16(16));
  const std::size_t len = end + kSdbfWindow;
  const __m512i two16 = _mm512_set1_epi16(2);
  for (std::size_t j = 0; j < n; j += 32) {
    const __m512i key = _mm512_load_si512(t.keys.keys + j);
    // base is a multiple of 64: window base+j+lane's first minimum lies
    // (key - j - lane) mod 64 positions after it.
    const __m512i pos = _mm512_add_epi16(lane, _mm512_set1_epi16(static_cast<short>(j)));
    const __m512i foff = _mm512_and_si512(_mm512_sub_epi16(key, pos), six3);
    const __m512i frel = _mm512_add_epi16(foff, lane);  // f - (base + j), < 95
    // Byte permute on the 16-bit lanes: the even byte of each lane holds
    // the index and receives run[f - base]; the odd bytes are zeroed.
    const __m512i run16 = _mm512_maskz_permutex2var_epi8(
        0x5555555555555555ULL, _mm512_loadu_si512(t.run + j), frel, _mm512_loadu_si512(t.run + j + 64));
    const __m512i off = _mm512_min_epu16(_mm512_add_epi16(foff, run16), six3);
    _mm512_store_si512(t.off + j, off);
    const __m512i mr = _mm512_add_epi16(_mm512_srli_epi16(key, 6), one16);
    _mm512_store_si512(t.mr2 + j, _mm512_permutexvar_epi16(dup_lo, mr));
    _mm512_store_si512(t.mr2 + j + 16, _mm512_permutexvar_epi16(dup_hi, mr));
    // Windows base+j+lane < base+n; the probe rank[w + 65] exists while
    // w + 65 < len (the last window's probe is past the region: no slide).
    const std::size_t w0 = base + j;
    const __mmask32 in = n - j >= 32 ? ~__mmask32{0} : (__mmask32{1} << (n - j)) - 1;
    const std::size_t probes = len - (w0 + 65) >= 32 ? 32 : len - (w0 + 65);
    const __mmask32 pm = probes >= 32 ? ~__mmask32{0} : (__mmask32{1} << probes) - 1;
    const __m512i r0 = _mm512_maskz_loadu_epi16(in, rank + w0);
    const __m512i r65 = _mm512_maskz_loadu_epi16(pm, rank + w0 + 65);
    const __mmask32 nz = _mm512_mask_test_epi16_mask(in, r0, r0);
    const __mmask32 slide = _mm512_mask_cmpge_epu16_mask(
        _mm512_mask_cmpge_epu16_mask(nz, off, two16), r65, mr);
    t.slide[j / 32] = slide;
    t.nz[j / 32] = nz;
  }
  const std::size_t used = (n + 31) / 32;
  std::fill(t.off + n, t.off + n + 96, std::uint16_t{0});
  t.slide[used] = t.slide[used + 1] = 0;
  t.nz[used] = t.nz[used + 1] = 0;
}

// The AVX-512 scan: the same state machine as HS_SDBF_SCORES_BODY, with
// the full evaluations read from the FeTiles tables and the cheap slide done
// 32 steps at a time on compare masks (no data-dependent branch per step,
// whose mispredictions dominated). The serial chain visits only the full
// evaluations that start a slide: 70 % of full evaluations over the mix are
// followed by another one at once (the tile's slide[] bit is clear), and
// those are skipped with one bit search and scored off the chain, which took
// 17 % off this pass's CPU time (side by side, 2026-11-23, docs/performance.md).
// That ended as well a branch per window on rank[i] == 0.
// Measured and not kept (CPU time on the mix, side by side): 64-step
// batches (no difference with the run search either, 2026-11-23); a
// branch-free clamp of mp - i; folding the "probe equal to mr before mp" cap
// into the stop mask; writing the points of a batch with compress/expand and
// a masked store instead of the rare per-hit loop; tiles of 1024 or 4096
// windows; skipping run-length doubling passes once no run grows (runs are
// long in most tiles). Also measured and not kept (2026-11-23,
// docs/performance.md): running the rank pass inside this loop, one
// 32-position rank block (or one eighth of one) after each full evaluation,
// kept 4 K positions ahead: 5-18 % more CPU time over the mix, not less. Nor
// (2026-11-23) two scan chains interleaved in this loop on regions of 64 KiB
// and more, the second a speculative one from the middle: exact, but 3 %
// more time in this pass, not less.
HS_AVX512_SCAN_TARGET void sdbf_scores_avx512(const std::uint16_t* rank, std::size_t len,
                                              std::uint8_t* score) {
  if (len <= kSdbfWindow) {
    std::memset(score, 0, len);
    return;
  }
  const std::size_t end = len - kSdbfWindow;
  // score[] is zeroed just ahead of the scan rather than all at once: on a
  // large region a full memset has long left the cache when the scan's
  // increments reach a line, and each new line then costs a miss. Points
  // only ever go to positions <= i + 127 (a slide) or to the tile's windows
  // plus 63 (full evaluations), so keeping score[0, zeroed) zero with zeroed
  // past both before each write is enough.
  constexpr std::size_t kZeroAhead = 4096;
  std::size_t zeroed = 0;
  auto zero_to = [&](std::size_t to) {
    to = std::min(len, to);
    if (to > zeroed) {
      std::memset(score + zeroed, 0, to - zeroed);
      zeroed = to;
    }
  };
  zero_to(kZeroAhead);
  FeTiles tiles;
  constexpr std::size_t kBatch = 32;
  std::size_t i = 0;
  while (i < end) {
    if (i >= tiles.keys.hi) {
      fill_fe_tile(rank, end, i & ~std::size_t{63}, tiles);
      zero_to(tiles.keys.hi + kZeroAhead);
    }
    const std::size_t lo = tiles.keys.lo;
    const std::size_t n = tiles.keys.hi - lo;
    // Windows from i on are evaluated in full, one after the other, until
    // the first one after which the cheap slide takes a step (a set bit of
    // slide[]). Each such evaluation gives its point to its own mp, which
    // the tile holds: the points are added here off the serial chain, four
    // at a time without branches, and the chain jumps straight to that
    // window. Most full evaluations (70 % over the mix) are followed by
    // another, in runs of four on average.
    auto credit = [&](std::uint64_t bits, std::size_t from) {
      std::uint8_t* const s = score + lo + from;
      const std::uint16_t* const o = tiles.off + from;
      do {
        // An empty mask gives t = 64: the add of 0 lands on a position
        // inside the region, already zeroed (see off[]), and changes nothing.
        // Adding the flag instead of choosing a target keeps GCC from
        // turning the choice into a branch that mispredicts.
        for (int u = 0; u < 4; ++u) {
          const std::size_t t = static_cast<std::size_t>(std::countr_zero(bits));
          s[t + o[t]] = static_cast<std::uint8_t>(s[t + o[t]] + (bits != 0));
          bits &= bits - 1;
        }
      } while (bits != 0);
    };
    std::size_t rel = i - lo;
    std::size_t k = n;
    while (rel < n) {
      std::uint64_t sl, nzb;
      std::memcpy(&sl, tiles.slide + rel / 32, sizeof sl);
      std::memcpy(&nzb, tiles.nz + rel / 32, sizeof nzb);
      sl >>= rel % 32;
      nzb >>= rel % 32;
      if (sl != 0) {
        k = rel + static_cast<std::size_t>(std::countr_zero(sl));
        credit(nzb & ((std::uint64_t{1} << (k - rel)) - 1), rel);
        break;
      }
      credit(nzb & 0xFFFFFFFFu, rel);
      rel += 32;
    }
    if (k >= n) {
      i = lo + n;  // the rest of the tile is evaluated in full: next tile
      continue;
    }
    // Window lo + k: its full evaluation, then the cheap slide.
    i = lo + k;
    std::size_t mp = i + tiles.off[k];
    const __m512i bc = _mm512_set1_epi32(static_cast<int>(tiles.mr2[k]));
    ++score[mp];
    ++i;
    for (;;) {
      if (i + 2 * kSdbfWindow > zeroed) zero_to(i + kZeroAhead);
      // Probes rank[i+64 .. i+95]; past the region they read as 0, which
      // stops the slide exactly as the region's trailing zero ranks do.
      const std::size_t avail = len - (i + kSdbfWindow);
      const __m512i a = avail >= kBatch ? _mm512_loadu_si512(rank + i + kSdbfWindow)
                                        : _mm512_maskz_loadu_epi16((__mmask32{1} << avail) - 1,
                                                                   rank + i + kSdbfWindow);
      const std::uint64_t lt = _mm512_cmplt_epu16_mask(a, bc);
      const std::uint64_t eq = _mm512_cmpeq_epi16_mask(a, bc);
      constexpr std::uint64_t kStopBit = std::uint64_t{1} << kBatch;
      // Step t runs while rank[i+t+64] >= mr (t < stop) and i+t < mp. A
      // probe equal to mr moves mp to i+t+64, beyond this batch, so after
      // the first such step only `stop` can end the batch.
      const std::size_t stop = static_cast<std::size_t>(std::countr_zero(lt | kStopBit));
      const std::size_t bound = mp > i ? mp - i : 0;
      const std::size_t lim = std::min(stop, bound);
      const std::size_t first_eq = static_cast<std::size_t>(std::countr_zero(eq | kStopBit));
      const std::size_t steps = first_eq < lim ? stop : lim;
      std::uint64_t moves = eq & ((std::uint64_t{1} << steps) - 1);
      std::size_t prev = 0;
      while (moves != 0) {  // rare: about one batch in sixteen
        const std::size_t e = static_cast<std::size_t>(std::countr_zero(moves));
        score[mp] = static_cast<std::uint8_t>(score[mp] + (e - prev));
        mp = i + e + kSdbfWindow;
        prev = e;
        moves &= moves - 1;
      }
      score[mp] = static_cast<std::uint8_t>(score[mp] + (steps - prev));
      i += steps;
      if (steps < kBatch) break;
    }
    // The slide stopped at i: window i is evaluated in full (or skipped if
    // rank[i] == 0), which the run search at the top does.
  }
  zero_to(len);
}
#else
void sdbf_scores_avx512(const std::uint16_t* rank, std::size_t len, std::uint8_t* score) {
  sdbf_scores_portable(rank, len, score);
}
#endif

void sdbf_scores(const std::uint16_t* rank, std::size_t len, std::uint8_t* score) {
  if (sdbf_scan_has_avx512()) {
    sdbf_scores_avx512(rank, len, score);
  } else {
    sdbf_scores_portable(rank, len, score);
  }
}

std::size_t sdbf_select_portable(const std::uint8_t* score, std::size_t n, std::uint8_t min_score,
                                 std::uint32_t* out) {
  std::size_t k = 0;
  // Branch-free compaction: selected positions are sparse and irregular.
  for (std::size_t p = 0; p < n; ++p) {
    out[k] = static_cast<std::uint32_t>(p);
    k += score[p] >= min_score;
  }
  return k;
}

#if HASHSIEVE_SCAN_X86
HS_AVX512_TARGET std::size_t sdbf_select_avx512(const std::uint8_t* score, std::size_t n,
                                                std::uint8_t min_score, std::uint32_t* out) {
  const __m512i lim = _mm512_set1_epi8(static_cast<char>(min_score));
  std::size_t k = 0;
  for (std::size_t p = 0; p < n; p += 64) {
    const std::size_t lanes = std::min<std::size_t>(64, n - p);
    const __mmask64 lm = lanes == 64 ? ~__mmask64{0} : (__mmask64{1} << lanes) - 1;
    std::uint64_t hit = _mm512_mask_cmpge_epu8_mask(lm, _mm512_maskz_loadu_epi8(lm, score + p), lim);
    while (hit != 0) {
      out[k++] = static_cast<std::uint32_t>(p + static_cast<std::size_t>(std::countr_zero(hit)));
      hit &= hit - 1;
    }
  }
  return k;
}
#else
std::size_t sdbf_select_avx512(const std::uint8_t* score, std::size_t n, std::uint8_t min_score,
                               std::uint32_t* out) {
  return sdbf_select_portable(score, n, min_score, out);
}
#endif

std::size_t sdbf_select(const std::uint8_t* score, std::size_t n, std::uint8_t min_score,
                        std::uint32_t* out) {
  return sdbf_scan_has_avx512() ? sdbf_select_avx512(score, n, min_score, out)
                                  : sdbf_select_portable(score, n, min_score, out);
}

}  // namespace hashsieve::digest
