// The fused MD5 + SHA-1 + SHA-256 block kernel.
//
// Why fused: MD5 is one long serial dependency chain (about 4-5 cycles per
// step, 64 steps per block) that keeps one or two integer ALUs busy and leaves
// the rest idle, while SHA-1/SHA-256 with SHA-NI run on the vector units.
// Hashing the three one after another costs the sum of their times; feeding
// the same 64-byte block to all three with their rounds interleaved in program
// order lets the out-of-order core run them side by side, so the combined cost
// approaches that of MD5 alone.
//
// Layout: a block is cut into 16 "slices". Slice s runs MD5 steps 4s..4s+3,
// SHA-256 rounds 4s..4s+3 (one SHA256RNDS2 pair) and one or two SHA-1 quads
// (20 quads spread over 16 slices). Each algorithm is compiled in only when
// selected (template flags), so subsets pay for nothing they do not use.
//
// SHA-NI round structure follows Intel's reference ("Intel SHA Extensions",
// 2013) and the public-domain sha-intrinsics by Jeffrey Walton; the schedule is
// written as index rules instead of unrolled text (see sha1_quad/sha256_quad).

#include <cpuid.h>
#include <immintrin.h>

#include <array>
#include <bit>
#include <cstring>
#include <utility>

#include "crc32_clmul.h"
#include "crypto_kernels.h"

namespace hashsieve::digest::detail {
namespace {

#define HS_FUSED_TARGET __attribute__((target("sha,sse4.1,ssse3,bmi,pclmul")))
#define HS_FUSED_INLINE __attribute__((target("sha,sse4.1,ssse3,bmi,pclmul"), always_inline)) inline

// RFC 1321: T[i] = floor(2^32 * |sin(i + 1)|).
constexpr std::uint32_t kMd5T[64] = {
    0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a, 0xa8304613, 0xfd469501,
    0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be, 0x6b901122, 0xfd987193, 0xa679438e, 0x49b40821,
    0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa, 0xd62f105d, 0x02441453, 0xd8a1e681, 0xe7d3fbc8,
    0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed, 0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a,
    0xfffa3942, 0x8771f681, 0x6d9d6122, 0xfde5380c, 0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70,
    0x289b7ec6, 0xeaa127fa, 0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665,
    0xf4292244, 0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
    0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1, 0xf7537e82, 0xbd3af235, 0x2ad7d2bb, 0xeb86d391};

constexpr int kMd5Shift[4][4] = {{7, 12, 17, 22}, {5, 9, 14, 20}, {4, 11, 16, 23}, {6, 10, 15, 21}};

// Message word used by step j.
constexpr int md5_index(int j) {
  switch (j / 16) {
    case 0: return j % 16;
    case 1: return (5 * j + 1) % 16;
    case 2: return (3 * j + 5) % 16;
    default: return (7 * j) % 16;
  }
}

// FIPS 180-4 section 4.2.2.
alignas(16) constexpr std::uint32_t kSha256K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

inline std::uint32_t load_le32(const std::uint8_t* p) {
  std::uint32_t v;
  std::memcpy(&v, p, 4);  // little-endian host (x86-64)
  return v;
}

// One MD5 step j updating `a`. The terms not depending on `b` (the value just
// produced by the previous step) are summed first so they are off the critical
// path; only the boolean function's last operations, the rotate and the final
// add wait for `b`.
template <int J>
[[gnu::always_inline]] inline void md5_step(std::uint32_t& a, std::uint32_t b, std::uint32_t c,
                                            std::uint32_t d, const std::uint8_t* p) {
  constexpr int kRound = J / 16;
  std::uint32_t sum = a + kMd5T[J] + load_le32(p + 4 * md5_index(J));
  if constexpr (kRound == 0) {
    sum += ((c ^ d) & b) ^ d;  // F = (b & c) | (~b & d)
  } else if constexpr (kRound == 1) {
    sum += (c & ~d) + (b & d);  // G = (b & d) | (c & ~d); the two terms are disjoint
  } else if constexpr (kRound == 2) {
    sum += (c ^ d) ^ b;  // H
  } else {
    sum += (b | ~d) ^ c;  // I
  }
  a = b + std::rotl(sum, kMd5Shift[kRound][J % 4]);
}

template <int S>
[[gnu::always_inline]] inline void md5_slice(std::uint32_t& a, std::uint32_t& b, std::uint32_t& c,
                                             std::uint32_t& d, const std::uint8_t* p) {
  md5_step<4 * S + 0>(a, b, c, d, p);
  md5_step<4 * S + 1>(d, a, b, c, p);
  md5_step<4 * S + 2>(c, d, a, b, p);
  md5_step<4 * S + 3>(b, c, d, a, p);
}

// Register state of the fused loop. A local object of this type is fully
// scalarised by the compiler after inlining, so every member lives in a
// register (or a spill slot) rather than in memory.
struct FusedRegs {
  const std::uint8_t* p;
  // MD5
  std::uint32_t a, b, c, d;
  // SHA-256: ABEF/CDGH packing that SHA256RNDS2 expects, and W[4i..4i+3].
  __m128i s0, s1, w[4];
  // SHA-1: ABCD reversed, E in the top lane (two registers alternate), W.
  __m128i abcd, e0, e1, x[4];
  __m128i mask256, mask1;
  // CRC-32: four folding lanes, one per 16-byte column of the block.
  __m128i crc[4], crc_k;

  // SHA-256 rounds 4i..4i+3. The message schedule is spread over the quads:
  // W[4q..] for q >= 4 starts with MSG1 at quad q-3 and finishes with MSG2 at
  // quad q-1 (W[t] = s1(W[t-2]) + W[t-7] + s0(W[t-15]) + W[t-16]).
  template <int I>
  HS_FUSED_INLINE void sha256_quad() {
    constexpr int kCur = I % 4;
    if constexpr (I < 4) {
      w[kCur] = _mm_shuffle_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16 * I)),
                                 mask256);
    }
    __m128i msg =
        _mm_add_epi32(w[kCur], _mm_load_si128(reinterpret_cast<const __m128i*>(kSha256K + 4 * I)));
    s1 = _mm_sha256rnds2_epu32(s1, s0, msg);
    if constexpr (I >= 3 && I <= 14) {
      constexpr int kNext = (I + 1) % 4;
      constexpr int kPrev = (I + 3) % 4;
      __m128i tmp = _mm_alignr_epi8(w[kCur], w[kPrev], 4);
      w[kNext] = _mm_sha256msg2_epu32(_mm_add_epi32(w[kNext], tmp), w[kCur]);
    }
    msg = _mm_shuffle_epi32(msg, 0x0E);
    s0 = _mm_sha256rnds2_epu32(s0, s1, msg);
    if constexpr (I >= 1 && I <= 12) {
      constexpr int kPrev = (I + 3) % 4;
      w[kPrev] = _mm_sha256msg1_epu32(w[kPrev], w[kCur]);
    }
  }

  // SHA-1 rounds 4i..4i+3. W[4q..] for q >= 4 is built by MSG1 at quad q-3,
  // an XOR at quad q-2 and MSG2 at quad q-1
  // (W[t] = rol1(W[t-3] ^ W[t-8] ^ W[t-14] ^ W[t-16])).
  template <int I>
  HS_FUSED_INLINE void sha1_quad() {
    constexpr int kCur = I % 4;
    constexpr int kFunc = I / 5;
    if constexpr (I < 4) {
      x[kCur] = _mm_shuffle_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16 * I)),
                                 mask1);
    }
    if constexpr (I == 0) {
      e0 = _mm_add_epi32(e0, x[0]);
      e1 = abcd;
    } else if constexpr (I % 2 == 1) {
      e1 = _mm_sha1nexte_epu32(e1, x[kCur]);
      e0 = abcd;
    } else {
      e0 = _mm_sha1nexte_epu32(e0, x[kCur]);
      e1 = abcd;
    }
    if constexpr (I >= 3 && I <= 18) {
      constexpr int kNext = (I + 1) % 4;
      x[kNext] = _mm_sha1msg2_epu32(x[kNext], x[kCur]);
    }
    abcd = _mm_sha1rnds4_epu32(abcd, I % 2 == 1 ? e1 : e0, kFunc);
    if constexpr (I >= 1 && I <= 16) {
      constexpr int kPrev = (I + 3) % 4;
      x[kPrev] = _mm_sha1msg1_epu32(x[kPrev], x[kCur]);
    }
    if constexpr (I >= 2 && I <= 17) {
      constexpr int kNext2 = (I + 2) % 4;
      x[kNext2] = _mm_xor_si128(x[kNext2], x[kCur]);
    }
  }

  template <int S, bool kMd5, bool kSha1, bool kSha256, bool kCrc>
  HS_FUSED_INLINE void slice() {
    if constexpr (kMd5) md5_slice<S>(a, b, c, d, p);
    // One CRC lane every fourth slice: spread out, the few PCLMULs slot into
    // gaps between the SHA instructions.
    if constexpr (kCrc && S % 4 == 2) {
      constexpr int kLane = S / 4;
      const __m128i next = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16 * kLane));
      crc[kLane] = crc_fold(crc[kLane], next, crc_k);
    }
    if constexpr (kSha256) sha256_quad<S>();
    if constexpr (kSha1) {
      constexpr int kFirst = (5 * S + 3) / 4;  // quads q with floor(4q/5) == S
      constexpr int kEnd = (5 * S + 8) / 4;
      if constexpr (kFirst < kEnd) sha1_quad<kFirst>();
      if constexpr (kFirst + 1 < kEnd) sha1_quad<kFirst + 1>();
    }
  }

  template <int S, bool kMd5, bool kSha1, bool kSha256, bool kCrc>
  HS_FUSED_INLINE void slices() {
    slice<S, kMd5, kSha1, kSha256, kCrc>();
    if constexpr (S < 15) slices<S + 1, kMd5, kSha1, kSha256, kCrc>();
  }
};

template <bool kMd5, bool kSha1, bool kSha256, bool kCrc>
HS_FUSED_TARGET void fused_blocks(FusedState& st, const std::uint8_t* data, std::size_t blocks) {
  FusedRegs r{};  // zeroed: registers of unselected algorithms are carried along unused
  r.p = data;
  r.a = st.md5[0];
  r.b = st.md5[1];
  r.c = st.md5[2];
  r.d = st.md5[3];
  r.mask256 = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
  r.mask1 = _mm_set_epi64x(0x0001020304050607ULL, 0x08090a0b0c0d0e0fULL);
  if constexpr (kSha256) {
    __m128i abcd = _mm_loadu_si128(reinterpret_cast<const __m128i*>(st.sha256));
    __m128i efgh = _mm_loadu_si128(reinterpret_cast<const __m128i*>(st.sha256 + 4));
    __m128i cdab = _mm_shuffle_epi32(abcd, 0xB1);
    efgh = _mm_shuffle_epi32(efgh, 0x1B);
    r.s0 = _mm_alignr_epi8(cdab, efgh, 8);     // ABEF
    r.s1 = _mm_blend_epi16(efgh, cdab, 0xF0);  // CDGH
  }
  if constexpr (kSha1) {
    r.abcd = _mm_shuffle_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(st.sha1)), 0x1B);
    r.e0 = _mm_set_epi32(static_cast<int>(st.sha1[4]), 0, 0, 0);
  }
  if constexpr (kCrc) {
    // Fresh lanes are zero, and folding zero forward gives zero, so the first
    // block is simply loaded into them. zlib's initial register (~0) belongs
    // XORed into the first four stream bytes; that is done right after the
    // first block, while lane 0 still holds those bytes unfolded.
    for (int i = 0; i < 4; ++i) {
      r.crc[i] = _mm_load_si128(reinterpret_cast<const __m128i*>(st.crc_lanes + 16 * i));
    }
    r.crc_k = _mm_load_si128(reinterpret_cast<const __m128i*>(kCrcK1K2));
  }
  // A local copy: `data` may alias `st` as far as the compiler knows.
  bool crc_started = st.crc_started;

  for (; blocks != 0; --blocks, r.p += kBlockBytes) {
    const std::uint32_t a0 = r.a, b0 = r.b, c0 = r.c, d0 = r.d;
    const __m128i s0_save = r.s0, s1_save = r.s1;
    const __m128i abcd_save = r.abcd, e0_save = r.e0;
    r.slices<0, kMd5, kSha1, kSha256, kCrc>();
    if constexpr (kCrc) {
      if (!crc_started) {
        r.crc[0] = _mm_xor_si128(r.crc[0], _mm_cvtsi32_si128(-1));
        crc_started = true;
      }
    }
    if constexpr (kMd5) {
      r.a += a0;
      r.b += b0;
      r.c += c0;
      r.d += d0;
    }
    if constexpr (kSha256) {
      r.s0 = _mm_add_epi32(r.s0, s0_save);
      r.s1 = _mm_add_epi32(r.s1, s1_save);
    }
    if constexpr (kSha1) {
      // After quad 19 e0 holds A of round 76, whose rol30 is the new E.
      r.e0 = _mm_sha1nexte_epu32(r.e0, e0_save);
      r.abcd = _mm_add_epi32(r.abcd, abcd_save);
    }
  }

  if constexpr (kMd5) {
    st.md5[0] = r.a;
    st.md5[1] = r.b;
    st.md5[2] = r.c;
    st.md5[3] = r.d;
  }
  if constexpr (kSha256) {
    __m128i feba = _mm_shuffle_epi32(r.s0, 0x1B);
    __m128i dchg = _mm_shuffle_epi32(r.s1, 0xB1);
    __m128i dcba = _mm_blend_epi16(feba, dchg, 0xF0);
    __m128i hgfe = _mm_alignr_epi8(dchg, feba, 8);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(st.sha256), dcba);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(st.sha256 + 4), hgfe);
  }
  if constexpr (kSha1) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(st.sha1), _mm_shuffle_epi32(r.abcd, 0x1B));
    st.sha1[4] = static_cast<std::uint32_t>(_mm_extract_epi32(r.e0, 3));
  }
  if constexpr (kCrc) {
    for (int i = 0; i < 4; ++i) {
      _mm_store_si128(reinterpret_cast<__m128i*>(st.crc_lanes + 16 * i), r.crc[i]);
    }
    st.crc_started = crc_started;
  }
}

using BlocksFn = void (*)(FusedState&, const std::uint8_t*, std::size_t);

// Instantiation for selection bits md5=8, sha1=4, sha256=2, crc32=1.
template <unsigned W>
constexpr BlocksFn blocks_fn() {
  return &fused_blocks<(W & 8) != 0, (W & 4) != 0, (W & 2) != 0, (W & 1) != 0>;
}

template <unsigned... W>
constexpr std::array<BlocksFn, sizeof...(W)> make_table(std::integer_sequence<unsigned, W...>) {
  return {blocks_fn<W>()...};
}

constexpr auto kBlocksTable = make_table(std::make_integer_sequence<unsigned, 16>{});

HS_FUSED_TARGET std::uint32_t crc_register_of(const FusedState& st) {
  __m128i lanes[4];
  for (int i = 0; i < 4; ++i) {
    lanes[i] = _mm_load_si128(reinterpret_cast<const __m128i*>(st.crc_lanes + 16 * i));
  }
  return crc_reduce128(crc_merge4(lanes[0], lanes[1], lanes[2], lanes[3]));
}

}  // namespace

void fused_init(FusedState& state) {
  state = FusedState{{0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476},
                     {0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476, 0xc3d2e1f0},
                     {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c,
                      0x1f83d9ab, 0x5be0cd19},
                     {},
                     false};
}

bool fused_supported() {
  // CPUID directly rather than __builtin_cpu_supports: clang 14 (the fuzz
  // build) does not know the "sha" feature name.
  static const bool supported = [] {
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    if (__get_cpuid(1, &eax, &ebx, &ecx, &edx) == 0) return false;
    const bool pclmul = (ecx & bit_PCLMUL) != 0;
    const bool ssse3 = (ecx & bit_SSSE3) != 0;
    const bool sse41 = (ecx & bit_SSE4_1) != 0;
    if (__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx) == 0) return false;
    const bool sha = (ebx & bit_SHA) != 0;
    const bool bmi = (ebx & bit_BMI) != 0;
    return pclmul && ssse3 && sse41 && sha && bmi;
  }();
  return supported;
}

void fused_compress(FusedState& state, bool md5, bool sha1, bool sha256, bool crc32,
                    const std::uint8_t* data, std::size_t blocks) {
  const unsigned which =
      (md5 ? 8u : 0u) | (sha1 ? 4u : 0u) | (sha256 ? 2u : 0u) | (crc32 ? 1u : 0u);
  kBlocksTable[which](state, data, blocks);
}

std::uint32_t fused_crc32_finish(const FusedState& state, std::span<const std::uint8_t> tail) {
  const std::uint32_t crc = state.crc_started ? ~crc_register_of(state) : 0;
  return crc32_update_portable(crc, tail);
}

}  // namespace hashsieve::digest::detail
