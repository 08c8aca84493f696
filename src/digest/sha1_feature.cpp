// SHA-1 of one 64-byte feature window: SHA-NI intrinsics and a portable path.
#include "sha1_feature.h"
#include "cpu_features.h"

#include <array>
#include <bit>
#include <cstring>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define HASHSIEVE_SHA1_X86 1
#endif

namespace hashsieve::digest {
namespace {

constexpr std::array<std::uint32_t, 5> kSha1Init = {0x67452301u, 0xEFCDAB89u, 0x98BADCFEu,
                                                    0x10325476u, 0xC3D2E1F0u};

// The second compression block of every 64-byte message is the same padding
// block: 0x80, zeros, and the bit length 512 in the last word.
constexpr std::array<std::uint32_t, 16> kPadBlock = {0x80000000u, 0, 0, 0, 0, 0, 0, 0,
                                                     0,           0, 0, 0, 0, 0, 0, 512};

// Its full 80-word message schedule is therefore a constant too, which lets
// the SHA-NI path skip the schedule instructions for the second block.
constexpr std::array<std::uint32_t, 80> pad_schedule() {
  std::array<std::uint32_t, 80> w{};
  for (int t = 0; t < 16; ++t) w[t] = kPadBlock[t];
  for (int t = 16; t < 80; ++t) w[t] = std::rotl(w[t - 3] ^ w[t - 8] ^ w[t - 14] ^ w[t - 16], 1);
  return w;
}
constexpr std::array<std::uint32_t, 80> kPadSchedule = pad_schedule();

std::uint32_t load_be32(const std::uint8_t* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) |
         std::uint32_t{p[3]};
}

void compress_portable(std::array<std::uint32_t, 5>& h, const std::uint32_t* block16) {
  std::uint32_t w[80];
  for (int t = 0; t < 16; ++t) w[t] = block16[t];
  for (int t = 16; t < 80; ++t) w[t] = std::rotl(w[t - 3] ^ w[t - 8] ^ w[t - 14] ^ w[t - 16], 1);
  std::uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
  for (int t = 0; t < 80; ++t) {
    std::uint32_t f, k;
    if (t < 20) {
      f = (b & c) | (~b & d);
      k = 0x5A827999u;
    } else if (t < 40) {
      f = b ^ c ^ d;
      k = 0x6ED9EBA1u;
    } else if (t < 60) {
      f = (b & c) | (b & d) | (c & d);
      k = 0x8F1BBCDCu;
    } else {
      f = b ^ c ^ d;
      k = 0xCA62C1D6u;
    }
    const std::uint32_t tmp = std::rotl(a, 5) + f + e + k + w[t];
    e = d;
    d = c;
    c = std::rotl(b, 30);
    b = a;
    a = tmp;
  }
  h[0] += a;
  h[1] += b;
  h[2] += c;
  h[3] += d;
  h[4] += e;
}

#if HASHSIEVE_SHA1_X86
#define HS_SHA_TARGET __attribute__((target("sha,sse4.1")))

// Measured and not kept (2026-11-23, bench BM_Sha1Features): AVX-512
// multi-buffer SHA-1, sixteen features per call, one per 32-bit lane
// (gathered message words, vpternlogd for the round functions, vprold, the
// padding block's schedule + K as broadcast constants), also as two
// interleaved sixteen-lane groups. On Zen 4 it made 22 M features/s
// against 31-32 M/s for the four SHA-NI chains below: ~7 zmm instructions
// per round and lane group, at two 256-bit halves each, cost more than
// SHA-NI's two sha1rnds4 per four rounds.

// One SHA-1 compression for N independent lanes, written so that the N round
// chains interleave: a single chain of sha1rnds4 is latency-bound.
// kPad selects the constant padding block (schedule taken from kPadSchedule).
template <int N, int G, bool kPad>
HS_SHA_TARGET inline void sha1_groups(__m128i (&abcd)[N], __m128i (&prev)[N],
                                      __m128i (&msg)[N][4], const __m128i (&e_in)[N]) {
  for (int l = 0; l < N; ++l) {
    __m128i w;
    if constexpr (kPad) {
      w = _mm_set_epi32(static_cast<int>(kPadSchedule[4 * G]),
                        static_cast<int>(kPadSchedule[4 * G + 1]),
                        static_cast<int>(kPadSchedule[4 * G + 2]),
                        static_cast<int>(kPadSchedule[4 * G + 3]));
    } else if constexpr (G < 4) {
      w = msg[l][G];
    } else {
      // W[g] = msg2(msg1(W[g-4], W[g-3]) ^ W[g-2], W[g-1]) over a ring of 4.
      msg[l][G % 4] = _mm_sha1msg2_epu32(
          _mm_xor_si128(_mm_sha1msg1_epu32(msg[l][G % 4], msg[l][(G + 1) % 4]),
                        msg[l][(G + 2) % 4]),
          msg[l][(G + 3) % 4]);
      w = msg[l][G % 4];
    }
    const __m128i e = G == 0 ? _mm_add_epi32(e_in[l], w) : _mm_sha1nexte_epu32(prev[l], w);
    prev[l] = abcd[l];
    abcd[l] = _mm_sha1rnds4_epu32(abcd[l], e, G / 5);
  }
  if constexpr (G < 19) sha1_groups<N, G + 1, kPad>(abcd, prev, msg, e_in);
}

template <int N>
HS_SHA_TARGET inline void sha1_64_ni(const std::uint8_t* const (&in)[N], std::uint8_t* const (&out)[N]) {
  // Reverses all 16 bytes: big-endian words, first word in the top lane.
  const __m128i rev = _mm_set_epi64x(0x0001020304050607LL, 0x08090a0b0c0d0e0fLL);
  const __m128i abcd0 = _mm_set_epi32(static_cast<int>(kSha1Init[0]), static_cast<int>(kSha1Init[1]),
                                      static_cast<int>(kSha1Init[2]), static_cast<int>(kSha1Init[3]));
  const __m128i e0 = _mm_set_epi32(static_cast<int>(kSha1Init[4]), 0, 0, 0);
  __m128i abcd[N], prev[N], msg[N][4], e_in[N];
  for (int l = 0; l < N; ++l) {
    abcd[l] = abcd0;
    e_in[l] = e0;
    for (int k = 0; k < 4; ++k) {
      msg[l][k] = _mm_shuffle_epi8(
          _mm_loadu_si128(reinterpret_cast<const __m128i*>(in[l] + 16 * k)), rev);
    }
  }
  sha1_groups<N, 0, false>(abcd, prev, msg, e_in);
  for (int l = 0; l < N; ++l) {
    e_in[l] = _mm_sha1nexte_epu32(prev[l], e0);
    abcd[l] = _mm_add_epi32(abcd[l], abcd0);
  }
  __m128i abcd_save[N];
  for (int l = 0; l < N; ++l) abcd_save[l] = abcd[l];
  sha1_groups<N, 0, true>(abcd, prev, msg, e_in);
  for (int l = 0; l < N; ++l) {
    const __m128i e = _mm_sha1nexte_epu32(prev[l], e_in[l]);
    const __m128i h = _mm_shuffle_epi8(_mm_add_epi32(abcd[l], abcd_save[l]), rev);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out[l]), h);
    const std::uint32_t e_be = static_cast<std::uint32_t>(_mm_cvtsi128_si32(_mm_shuffle_epi8(e, rev)));
    std::memcpy(out[l] + 16, &e_be, 4);
  }
}
#endif

}  // namespace

bool sha1_feature_has_shani() {
#if HASHSIEVE_SHA1_X86
  static const bool has = cpu_has_sha_ni();
  return has;
#else
  return false;
#endif
}

void sha1_feature_portable(const std::uint8_t* msg, std::uint8_t* out) {
  std::array<std::uint32_t, 5> h = kSha1Init;
  std::uint32_t block[16];
  for (int t = 0; t < 16; ++t) block[t] = load_be32(msg + 4 * t);
  compress_portable(h, block);
  compress_portable(h, kPadBlock.data());
  for (int k = 0; k < 5; ++k) {
    out[4 * k] = static_cast<std::uint8_t>(h[k] >> 24);
    out[4 * k + 1] = static_cast<std::uint8_t>(h[k] >> 16);
    out[4 * k + 2] = static_cast<std::uint8_t>(h[k] >> 8);
    out[4 * k + 3] = static_cast<std::uint8_t>(h[k]);
  }
}

#if HASHSIEVE_SHA1_X86
HS_SHA_TARGET void sha1_feature_shani(const std::uint8_t* msg, std::uint8_t* out) {
  sha1_64_ni<1>({msg}, {out});
}
HS_SHA_TARGET void sha1_feature_x2_shani(const std::uint8_t* msg_a, const std::uint8_t* msg_b,
                                         std::uint8_t* out_a, std::uint8_t* out_b) {
  sha1_64_ni<2>({msg_a, msg_b}, {out_a, out_b});
}
HS_SHA_TARGET void sha1_feature_x4_shani(const std::uint8_t* const (&msg)[4], std::uint8_t* const (&out)[4]) {
  sha1_64_ni<4>(msg, out);
}
#else
void sha1_feature_x4_shani(const std::uint8_t* const (&msg)[4], std::uint8_t* const (&out)[4]) {
  for (int l = 0; l < 4; ++l) sha1_feature_portable(msg[l], out[l]);
}
void sha1_feature_shani(const std::uint8_t* msg, std::uint8_t* out) { sha1_feature_portable(msg, out); }
void sha1_feature_x2_shani(const std::uint8_t* msg_a, const std::uint8_t* msg_b, std::uint8_t* out_a,
                           std::uint8_t* out_b) {
  sha1_feature_portable(msg_a, out_a);
  sha1_feature_portable(msg_b, out_b);
}
#endif

void sha1_feature(const std::uint8_t* msg, std::uint8_t* out) {
  if (sha1_feature_has_shani()) {
    sha1_feature_shani(msg, out);
  } else {
    sha1_feature_portable(msg, out);
  }
}

void sha1_feature_x2(const std::uint8_t* msg_a, const std::uint8_t* msg_b, std::uint8_t* out_a,
                     std::uint8_t* out_b) {
  if (sha1_feature_has_shani()) {
    sha1_feature_x2_shani(msg_a, msg_b, out_a, out_b);
  } else {
    sha1_feature_portable(msg_a, out_a);
    sha1_feature_portable(msg_b, out_b);
  }
}

void sha1_feature_x4(const std::uint8_t* const (&msg)[4], std::uint8_t* const (&out)[4]) {
  if (sha1_feature_has_shani()) {
    sha1_feature_x4_shani(msg, out);
  } else {
    for (int l = 0; l < 4; ++l) sha1_feature_portable(msg[l], out[l]);
  }
}

}  // namespace hashsieve::digest
