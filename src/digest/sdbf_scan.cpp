// Entropy ranks and popularity scores (spec sections 2 and 3).
//
// The reference's popularity scan re-scans a whole 64-position window every
// time its "cheap slide" shortcut gives up, which is most of its run time. The
// shortcut itself is O(1) per step and is kept literally (its quirks decide
// the output). What a full evaluation of the window [i, i+63] computes, when
// rank[i] != 0, has a closed form:
//   mr = the smallest non-zero rank in the window,
//   mp = the end of the run of equal ranks that starts at the FIRST position
//        holding mr, clipped to the window,
// and when rank[i] == 0 it scores nothing and leaves mr = 0 (spec 3, notes).
// The closed form is evaluated in a few vector instructions (AVX-512BW: the
// window is two registers of 32 ranks) or by a scalar pass; both give the same
// (mp, mr) as the reference loop, which the tests check against a literal
// transcription on random and low-entropy data.
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
#define HS_AVX512_TARGET __attribute__((target("avx512f,avx512bw,sse4.1,bmi,bmi2,popcnt")))

[[gnu::always_inline]] HS_AVX512_TARGET inline WindowMin full_eval_avx512(const std::uint16_t* rank, std::size_t i) {
  const __m512i one = _mm512_set1_epi16(1);
  const __m512i a = _mm512_sub_epi16(_mm512_loadu_si512(rank + i), one);
  const __m512i b = _mm512_sub_epi16(_mm512_loadu_si512(rank + i + 32), one);
  const __m512i mn = _mm512_min_epu16(a, b);
  const __m256i m256 = _mm256_min_epu16(_mm512_maskz_extracti64x4_epi64(0xFF, mn, 0), _mm512_maskz_extracti64x4_epi64(0xFF, mn, 1));
  const __m128i m128 = _mm_min_epu16(_mm256_castsi256_si128(m256), _mm256_extracti128_si256(m256, 1));
  const std::uint16_t m1 = static_cast<std::uint16_t>(_mm_cvtsi128_si32(_mm_minpos_epu16(m128)));
  const __m512i bc = _mm512_set1_epi16(static_cast<short>(m1));
  const std::uint64_t eq = std::uint64_t{_mm512_cmpeq_epi16_mask(a, bc)} |
                           (std::uint64_t{_mm512_cmpeq_epi16_mask(b, bc)} << 32);
  const unsigned f = static_cast<unsigned>(std::countr_zero(eq));
  // Length of the run of equal minima starting at f (>= 1); the ones shifted
  // in above bit 63 stop it at the window's end.
  const unsigned run = static_cast<unsigned>(std::countr_zero(~(eq >> f)));
  return {i + f + run - 1, static_cast<std::uint16_t>(m1 + 1)};
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
      while (rank[i + kSdbfWindow] >= mr && i < mp) {                              \
        if (rank[i + kSdbfWindow] == mr) mp = i + kSdbfWindow;                     \
        ++score[mp];                                                               \
        ++i;                                                                       \
      }                                                                            \
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

void sdbf_ranks(const std::uint8_t* buf, std::size_t len, std::uint16_t* rank) {
  if (len <= kSdbfWindow) {
    std::fill(rank, rank + len, std::uint16_t{0});
    return;
  }
  std::uint32_t count[256] = {};
  for (std::size_t k = 0; k < kSdbfWindow; ++k) ++count[buf[k]];
  std::int32_t ent = 0;
  for (std::uint32_t c : count) ent += static_cast<std::int32_t>(kSdbfEntropy64[c]);
  const std::size_t end = len - kSdbfWindow;
  const std::uint16_t* ranks = kSdbfEntropyRanks.data();
  for (std::size_t p = 0; p < end; ++p) {
    rank[p] = ranks[static_cast<std::uint32_t>(ent) >> 10];
    const std::uint8_t out = buf[p];
    const std::uint8_t in = buf[p + kSdbfWindow];
    if (out != in) {
      ent += kDeltas.dec[count[out]];
      --count[out];
      ent += kDeltas.inc[count[in]];
      ++count[in];
    }
  }
  std::fill(rank + end, rank + len, std::uint16_t{0});
}

bool sdbf_scores_has_avx512() {
#if HASHSIEVE_SCAN_X86
  static const bool has = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
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
HS_AVX512_TARGET void sdbf_scores_avx512(const std::uint16_t* rank, std::size_t len,
                                         std::uint8_t* score) {
  HS_SDBF_SCORES_BODY(full_eval_avx512)
}
#else
void sdbf_scores_avx512(const std::uint16_t* rank, std::size_t len, std::uint8_t* score) {
  sdbf_scores_portable(rank, len, score);
}
#endif

void sdbf_scores(const std::uint16_t* rank, std::size_t len, std::uint8_t* score) {
  if (sdbf_scores_has_avx512()) {
    sdbf_scores_avx512(rank, len, score);
  } else {
    sdbf_scores_portable(rank, len, score);
  }
}

}  // namespace hashsieve::digest
