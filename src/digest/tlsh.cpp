// TLSH, byte-compatible with libtlsh 3.4.4 (128 buckets, 1-byte checksum).
//
// The algorithm, as libtlsh 3.4.4 runs it:
//  * A 5-byte window slides over the input. At every position with at least
//    5 bytes seen, six "triplets" of window bytes are hashed with a salted
//    Pearson hash, b(s, x, y, z) = T[T[T[T[s] ^ x] ^ y] ^ z], and the bucket
//    each one names is incremented. A 1-byte checksum is chained through the
//    same hash: cs = b(0, x[i], x[i-1], cs).
//  * finish: inputs under 256 bytes, or with at most 64 of the first 128
//    buckets non-empty, give no digest. Otherwise the quartiles q1..q3 of those
//    128 counts give each bucket a 2-bit code, the length gets a log class,
//    and q1/q3, q2/q3 are kept as 4-bit ratios.
// The per-byte loop is the cost. libtlsh keeps the window in a 5-slot ring
// indexed modulo 5 and calls an out-of-line b_mapping per triplet. Here:
//  * portable loop: the window lives in registers and the first two Pearson
//    steps of each salt, T[T[s] ^ x], are one lookup in a per-salt table, so
//    a triplet costs three lookups and the ring disappears;
//  * AVX-512 VBMI loop (picked at run time): the hashes of 64 positions at a
//    time come from byte permutes, leaving only the checksum chain and the
//    bucket increments scalar (see vbmi_blocks).
// Both give bit-identical results; the tests run both against libtlsh.
#include "hashsieve/digest/tlsh.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace hashsieve::digest {
namespace {

// libtlsh's Pearson permutation (v_table), checked against libtlsh.a.
constexpr std::array<std::uint8_t, 256> kPearson = {
    1,   87,  49,  12,  176, 178, 102, 166, 121, 193, 6,   84,  249, 230, 44,  163,
    14,  197, 213, 181, 161, 85,  218, 80,  64,  239, 24,  226, 236, 142, 38,  200,
    110, 177, 104, 103, 141, 253, 255, 50,  77,  101, 81,  18,  45,  96,  31,  222,
    25,  107, 190, 70,  86,  237, 240, 34,  72,  242, 20,  214, 244, 227, 149, 235,
    97,  234, 57,  22,  60,  250, 82,  175, 208, 5,   127, 199, 111, 62,  135, 248,
    174, 169, 211, 58,  66,  154, 106, 195, 245, 171, 17,  187, 182, 179, 0,   243,
    132, 56,  148, 75,  128, 133, 158, 100, 130, 126, 91,  13,  153, 246, 216, 219,
    119, 68,  223, 78,  83,  88,  201, 99,  122, 11,  92,  32,  136, 114, 52,  10,
    138, 30,  48,  183, 156, 35,  61,  26,  143, 74,  251, 94,  129, 162, 63,  152,
    170, 7,   115, 167, 241, 206, 3,   150, 55,  59,  151, 220, 90,  53,  23,  131,
    125, 173, 15,  238, 79,  95,  89,  16,  105, 137, 225, 224, 217, 160, 37,  123,
    118, 73,  2,   157, 46,  116, 9,   145, 134, 228, 207, 212, 202, 215, 69,  229,
    27,  188, 67,  124, 168, 252, 42,  4,   29,  108, 21,  247, 19,  205, 39,  203,
    233, 40,  186, 147, 198, 192, 155, 33,  164, 191, 98,  204, 165, 180, 117, 76,
    140, 36,  210, 172, 41,  54,  159, 8,   185, 232, 113, 196, 231, 47,  146, 120,
    51,  65,  28,  144, 254, 221, 93,  189, 194, 139, 112, 43,  71,  109, 184, 209,
};

// Row 0 is the plain permutation; row k (1..7) is T[T[salt_k] ^ x] for the
// salts libtlsh uses: 0 for the checksum, then 2, 3, 5, 7, 11, 13 for the
// six triplets. One array so the loop addresses all rows from one base.
constexpr std::array<std::uint8_t, 8> kSalts = {0, 0, 2, 3, 5, 7, 11, 13};
struct PearsonTables {
  alignas(64) std::uint8_t row[8][256];
};
constexpr PearsonTables make_tables() {
  PearsonTables t{};
  for (int x = 0; x < 256; ++x) t.row[0][x] = kPearson[static_cast<std::size_t>(x)];
  for (std::size_t k = 1; k < 8; ++k) {
    for (std::size_t x = 0; x < 256; ++x) t.row[k][x] = kPearson[kPearson[kSalts[k]] ^ x];
  }
  return t;
}
constexpr PearsonTables kTables = make_tables();

constexpr std::size_t kEffBuckets = 128;

// Distance between two bodies, libtlsh's h_distance: per 2-bit code |a-b|,
// except that a difference of 3 counts 6. Computed 32 codes at a time: with
// d = a ^ b split into low bits l and high bits h per code, a code differs by
// 1 when only l is set, by 2 when only h is set; with both set the pair is
// {0,3} (distance 6) when a's two bits are equal, else {1,2} (distance 1).
int body_distance(const std::array<std::uint8_t, kTlshBodyBytes>& a,
                  const std::array<std::uint8_t, kTlshBodyBytes>& b) {
  constexpr std::uint64_t kLow = 0x5555555555555555ull;
  int sum = 0;
  for (std::size_t off = 0; off < kTlshBodyBytes; off += 8) {
    std::uint64_t x, y;
    std::memcpy(&x, a.data() + off, 8);
    std::memcpy(&y, b.data() + off, 8);
    const std::uint64_t d = x ^ y;
    const std::uint64_t l = d & kLow;
    const std::uint64_t h = (d >> 1) & kLow;
    const std::uint64_t same_bits = ~(x ^ (x >> 1)) & kLow;
    sum += std::popcount(l & ~h) + 2 * std::popcount(h & ~l) +
           6 * std::popcount(h & l & same_bits) + std::popcount(h & l & ~same_bits);
  }
  return sum;
}

}  // namespace

// libtlsh's l_capturing: a piecewise logarithmic length class, computed as it
// does (single-precision logf, double division, floor, low 8 bits) so the
// rounding at class boundaries is the same.
std::uint8_t tlsh_length_class(std::uint32_t len) {
  const double log_len = static_cast<double>(std::log(static_cast<float>(len)));
  double x;
  if (len <= 656) {
    x = log_len / 0.4054651;  // log(1.5)
  } else if (len <= 3199) {
    x = log_len / 0.26236426 - 8.72777;  // log(1.3)
  } else {
    x = log_len / 0.095310180 - 62.5472;  // log(1.1)
  }
  const auto i = static_cast<int>(std::floor(x));
  return static_cast<std::uint8_t>(i & 0xFF);
}

namespace {

// libtlsh's mod_diff: distance on a circle of size r.
int mod_diff(int x, int y, int r) {
  const int dl = x > y ? x - y : y - x;
  const int dr = r - dl;
  return dl > dr ? dr : dl;
}

std::uint8_t swap_nibbles(std::uint8_t b) {
  return static_cast<std::uint8_t>((b << 4) | (b >> 4));
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

// (q * 100) / q3 as libtlsh computes it: the product in 32-bit unsigned
// (wrapping), the division in float, truncated, kept mod 16.
std::uint8_t quartile_ratio(std::uint32_t q, std::uint32_t q3) {
  const std::uint32_t scaled = q * 100u;
  const float ratio = static_cast<float>(scaled) / static_cast<float>(q3);
  return static_cast<std::uint8_t>(static_cast<std::int64_t>(ratio) & 0xF);
}

}  // namespace

// --- TlshDigest ---------------------------------------------------------------

TlshDigest TlshDigest::from_fields(std::uint8_t checksum, std::uint8_t lvalue,
                                   std::uint8_t q1_ratio, std::uint8_t q2_ratio,
                                   const std::array<std::uint8_t, kTlshBodyBytes>& body) {
  TlshDigest d;
  d.checksum_ = checksum;
  d.lvalue_ = lvalue;
  d.q1_ratio_ = q1_ratio & 0xF;
  d.q2_ratio_ = q2_ratio & 0xF;
  d.body_ = body;
  return d;
}

Result<TlshDigest> TlshDigest::parse(std::string_view text) {
  std::string_view hex = text;
  if (hex.size() == kTlshHexChars + 2) {
    if (hex[0] != 'T' || hex[1] != '1') {
      return Error(ErrorCode::parse_error, "TLSH digest: expected prefix \"T1\"");
    }
    hex.remove_prefix(2);
  } else if (hex.size() != kTlshHexChars) {
    return Error(ErrorCode::parse_error,
                 "TLSH digest: expected 70 hex characters, optionally after \"T1\"; got " +
                     std::to_string(text.size()) + " characters");
  }
  std::array<std::uint8_t, kTlshHexChars / 2> raw{};
  for (std::size_t i = 0; i < raw.size(); ++i) {
    const int hi = hex_value(hex[2 * i]);
    const int lo = hex_value(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) {
      return Error(ErrorCode::parse_error, "TLSH digest: non-hex character at position " +
                                               std::to_string(text.size() - hex.size() + 2 * i +
                                                              (hi < 0 ? 0 : 1)));
    }
    raw[i] = static_cast<std::uint8_t>((hi << 4) | lo);
  }
  TlshDigest d;
  // The text form stores the header bytes nibble-swapped and the body last
  // byte first (libtlsh's hash()/fromTlshStr()).
  d.checksum_ = swap_nibbles(raw[0]);
  d.lvalue_ = swap_nibbles(raw[1]);
  const std::uint8_t q = swap_nibbles(raw[2]);
  d.q1_ratio_ = q & 0xF;
  d.q2_ratio_ = static_cast<std::uint8_t>(q >> 4);
  for (std::size_t i = 0; i < kTlshBodyBytes; ++i) d.body_[i] = raw[raw.size() - 1 - i];
  return d;
}

std::string TlshDigest::to_hex() const {
  static constexpr char kDigits[] = "0123456789ABCDEF";
  std::array<std::uint8_t, kTlshHexChars / 2> raw{};
  raw[0] = swap_nibbles(checksum_);
  raw[1] = swap_nibbles(lvalue_);
  raw[2] = swap_nibbles(static_cast<std::uint8_t>((q2_ratio_ << 4) | q1_ratio_));
  for (std::size_t i = 0; i < kTlshBodyBytes; ++i) raw[raw.size() - 1 - i] = body_[i];
  std::string out(kTlshHexChars, '0');
  for (std::size_t i = 0; i < raw.size(); ++i) {
    out[2 * i] = kDigits[raw[i] >> 4];
    out[2 * i + 1] = kDigits[raw[i] & 0xF];
  }
  return out;
}

std::string TlshDigest::to_string() const { return "T1" + to_hex(); }

// --- TlshHasher ---------------------------------------------------------------

void TlshHasher::reset() {
  counts_.fill(0);
  length_ = 0;
  window_.fill(0);
  checksum_ = 0;
}

namespace {

// Rolling state of the byte loop, kept in registers while a chunk runs.
struct Window {
  std::size_t w1, w2, w3, w4;  // x[i-1] .. x[i-4]
  std::size_t cs;              // running checksum
};

// Positions [from, to) of `p`, each with its full window available (the four
// bytes before `from` are in `w`). Counts go to the first histogram copy.
void scalar_positions(const std::uint8_t* p, std::size_t from, std::size_t to, Window& w,
                      std::uint32_t* b) {
  const auto& t = kTables.row;
  std::size_t w1 = w.w1, w2 = w.w2, w3 = w.w3, w4 = w.w4, cs = w.cs;
  for (std::size_t i = from; i < to; ++i) {
    const std::size_t c = p[i];
    cs = t[0][t[0][t[1][c] ^ w1] ^ cs];
    ++b[t[0][t[0][t[2][c] ^ w1] ^ w2]];
    ++b[t[0][t[0][t[3][c] ^ w1] ^ w3]];
    ++b[t[0][t[0][t[4][c] ^ w2] ^ w3]];
    ++b[t[0][t[0][t[5][c] ^ w2] ^ w4]];
    ++b[t[0][t[0][t[6][c] ^ w1] ^ w4]];
    ++b[t[0][t[0][t[7][c] ^ w3] ^ w4]];
    w4 = w3;
    w3 = w2;
    w2 = w1;
    w1 = c;
  }
  w = {w1, w2, w3, w4, cs};
}

#if defined(__x86_64__) && defined(__GNUC__)
#define HASHSIEVE_TLSH_VBMI 1

#define HASHSIEVE_TLSH_TARGET \
  __attribute__((target("avx512f,avx512bw,avx512vbmi,avx512vbmi2,popcnt")))

// 64 lookups at once in row k of kTables (256 bytes = four 64-byte parts):
// vpermi2b covers 128 entries (index bits 0..6), index bit 7 picks the half.
HASHSIEVE_TLSH_TARGET inline __m512i lookup64(int k, __m512i idx) {
  const std::uint8_t* row = kTables.row[k];
  const __m512i lo =
      _mm512_permutex2var_epi8(_mm512_load_si512(row), idx, _mm512_load_si512(row + 64));
  const __m512i hi =
      _mm512_permutex2var_epi8(_mm512_load_si512(row + 128), idx, _mm512_load_si512(row + 192));
  return _mm512_mask_blend_epi8(_mm512_movepi8_mask(idx), lo, hi);
}

// One triplet for 64 positions: T[T[T[T[salt] ^ a] ^ b] ^ c], with the first
// two steps in row k.
HASHSIEVE_TLSH_TARGET inline __m512i triplet64(int k, __m512i a, __m512i b, __m512i c) {
  return lookup64(0, _mm512_xor_si512(lookup64(0, _mm512_xor_si512(lookup64(k, a), b)), c));
}

// Positions [from, to) in blocks of 64; needs p[from-4 ..] readable and
// (to - from) a multiple of 64.
//
// The Pearson hashes depend only on the input, so for each block they are
// computed for all 64 positions at once with byte permutes. Only buckets
// 0..127 reach the digest, so each block's bucket indices are compressed
// down to those (about half) before counting. What is left serial is the
// checksum chain and the increments; one scalar loop interleaves the two so
// the chain's load latency hides behind the increments. The increments
// rotate over four histogram copies so that runs of one bucket (runs of
// equal bytes) do not serialise on one memory location.
HASHSIEVE_TLSH_TARGET void vbmi_blocks(const std::uint8_t* p, std::size_t from, std::size_t to,
                                       Window& w, std::uint32_t* counts) {
  constexpr std::size_t kBlocksPerBatch = 4;
  const auto& t = kTables.row;
  // Per batch: checksum inputs per position, and the kept bucket indices
  // (at most 6 per position; +64 slack for full-width compressed stores).
  alignas(64) std::uint8_t chain[kBlocksPerBatch * 64];
  alignas(64) std::uint8_t kept[kBlocksPerBatch * 64 * 6 + 64];
  std::size_t cs = w.cs;
  for (std::size_t batch = from; batch < to; batch += kBlocksPerBatch * 64) {
    const std::size_t batch_end = std::min(to, batch + kBlocksPerBatch * 64);
    std::size_t n_kept = 0;
    std::size_t n_chain = 0;
    for (std::size_t i = batch; i < batch_end; i += 64) {
      const __m512i x0 = _mm512_loadu_si512(p + i);
      const __m512i x1 = _mm512_loadu_si512(p + i - 1);
      const __m512i x2 = _mm512_loadu_si512(p + i - 2);
      const __m512i x3 = _mm512_loadu_si512(p + i - 3);
      const __m512i x4 = _mm512_loadu_si512(p + i - 4);
      // The checksum step's input before the running checksum enters.
      _mm512_store_si512(chain + n_chain, lookup64(0, _mm512_xor_si512(lookup64(1, x0), x1)));
      n_chain += 64;
      const __m512i r[6] = {triplet64(2, x0, x1, x2), triplet64(3, x0, x1, x3),
                            triplet64(4, x0, x2, x3), triplet64(5, x0, x2, x4),
                            triplet64(6, x0, x1, x4), triplet64(7, x0, x3, x4)};
      for (const __m512i& v : r) {
        const __mmask64 low = ~_mm512_movepi8_mask(v);  // index < 128
        _mm512_storeu_si512(kept + n_kept, _mm512_maskz_compress_epi8(low, v));
        n_kept += static_cast<std::size_t>(std::popcount(low));
      }
    }
    // Interleave: one checksum step per three increments (the typical
    // ratio), the increments' copy being k mod 4; then whichever is left.
    std::size_t c = 0, k = 0;
    for (; c + 4 <= n_chain && k + 12 <= n_kept; c += 4, k += 12) {
      cs = t[0][chain[c] ^ cs];
      ++counts[kept[k]];
      ++counts[256 + kept[k + 1]];
      ++counts[512 + kept[k + 2]];
      cs = t[0][chain[c + 1] ^ cs];
      ++counts[768 + kept[k + 3]];
      ++counts[kept[k + 4]];
      ++counts[256 + kept[k + 5]];
      cs = t[0][chain[c + 2] ^ cs];
      ++counts[512 + kept[k + 6]];
      ++counts[768 + kept[k + 7]];
      ++counts[kept[k + 8]];
      cs = t[0][chain[c + 3] ^ cs];
      ++counts[256 + kept[k + 9]];
      ++counts[512 + kept[k + 10]];
      ++counts[768 + kept[k + 11]];
    }
    for (; c < n_chain; ++c) cs = t[0][chain[c] ^ cs];
    for (; k < n_kept; ++k) ++counts[256 * (k & 3) + kept[k]];
  }
  w = {p[to - 1], p[to - 2], p[to - 3], p[to - 4], cs};
}

bool have_vbmi() {
  static const bool kHave = __builtin_cpu_supports("avx512f") &&
                            __builtin_cpu_supports("avx512bw") &&
                            __builtin_cpu_supports("avx512vbmi") &&
                            __builtin_cpu_supports("avx512vbmi2");
  return kHave;
}
#endif

}  // namespace

bool TlshHasher::vector_kernel_available() {
#ifdef HASHSIEVE_TLSH_VBMI
  return have_vbmi();
#else
  return false;
#endif
}

void TlshHasher::update(std::span<const std::uint8_t> data) {
  const std::uint8_t* p = data.data();
  std::size_t n = data.size();
  // The first four bytes of the stream only fill the window.
  while (n > 0 && length_ < 4) {
    window_ = {*p, window_[0], window_[1], window_[2]};
    ++length_;
    ++p;
    --n;
  }
  if (n == 0) return;

  Window w{window_[0], window_[1], window_[2], window_[3], checksum_};
  std::size_t i = 0;
#ifdef HASHSIEVE_TLSH_VBMI
  // The vector blocks read their window from memory, so the first four
  // positions of a chunk (whose window is partly carried over) stay scalar.
  if (n >= 4 + 64 && !force_scalar_ && have_vbmi()) {
    scalar_positions(p, 0, 4, w, counts_.data());
    const std::size_t end = 4 + (n - 4) / 64 * 64;
    vbmi_blocks(p, 4, end, w, counts_.data());
    i = end;
  }
#endif
  scalar_positions(p, i, n, w, counts_.data());
  window_ = {static_cast<std::uint8_t>(w.w1), static_cast<std::uint8_t>(w.w2),
             static_cast<std::uint8_t>(w.w3), static_cast<std::uint8_t>(w.w4)};
  checksum_ = static_cast<std::uint8_t>(w.cs);
  length_ += n;
}

std::optional<TlshDigest> TlshHasher::finish() const {
  if (length_ < kTlshMinInputBytes) return std::nullopt;

  // Sum the histogram copies (wrapping, as libtlsh's unsigned counts do).
  std::array<std::uint32_t, kEffBuckets> buckets{};
  for (std::size_t copy = 0; copy < kHistogramCopies; ++copy) {
    for (std::size_t k = 0; k < kEffBuckets; ++k) buckets[k] += counts_[256 * copy + k];
  }
  std::array<std::uint32_t, kEffBuckets> sorted = buckets;
  // Quartiles are order statistics 31, 63 and 95 of the 128 counts. Each
  // nth_element leaves everything before its pivot no larger, so the next
  // search can stay left of it.
  auto* const s = sorted.data();
  std::nth_element(s, s + 95, s + kEffBuckets);
  std::nth_element(s, s + 63, s + 95);
  std::nth_element(s, s + 31, s + 63);
  const std::uint32_t q1 = s[31], q2 = s[63], q3 = s[95];

  const auto nonzero = std::count_if(buckets.begin(), buckets.end(),
                                     [](std::uint32_t v) { return v > 0; });
  // "Too little variation": libtlsh requires more than half of the buckets
  // to be non-empty. That also guarantees q3 > 0 for the ratios below.
  if (nonzero <= static_cast<std::ptrdiff_t>(kEffBuckets / 2)) return std::nullopt;

  std::array<std::uint8_t, kTlshBodyBytes> body{};
  for (std::size_t i = 0; i < kTlshBodyBytes; ++i) {
    unsigned h = 0;
    for (unsigned j = 0; j < 4; ++j) {
      const std::uint32_t k = buckets[4 * i + j];
      const unsigned code = q3 < k ? 3 : q2 < k ? 2 : q1 < k ? 1 : 0;
      h |= code << (2 * j);
    }
    body[i] = static_cast<std::uint8_t>(h);
  }
  const auto len32 = static_cast<std::uint32_t>(
      std::min<std::uint64_t>(length_, std::numeric_limits<std::uint32_t>::max()));
  return TlshDigest::from_fields(checksum_, tlsh_length_class(len32), quartile_ratio(q1, q3),
                                 quartile_ratio(q2, q3), body);
}

std::optional<TlshDigest> TlshHasher::digest_of(std::span<const std::uint8_t> data) {
  TlshHasher h;
  h.update(data);
  return h.finish();
}

// --- distance -----------------------------------------------------------------

int tlsh_header_distance(const TlshDigest& a, const TlshDigest& b, bool include_length) {
  int diff = 0;
  if (include_length) {
    const int ldiff = mod_diff(a.lvalue(), b.lvalue(), 256);
    diff = ldiff <= 1 ? ldiff : ldiff * 12;
  }
  const int q1diff = mod_diff(a.q1_ratio(), b.q1_ratio(), 16);
  diff += q1diff <= 1 ? q1diff : (q1diff - 1) * 12;
  const int q2diff = mod_diff(a.q2_ratio(), b.q2_ratio(), 16);
  diff += q2diff <= 1 ? q2diff : (q2diff - 1) * 12;
  if (a.checksum() != b.checksum()) ++diff;
  return diff;
}

int tlsh_body_distance(const std::array<std::uint8_t, kTlshBodyBytes>& a,
                       const std::array<std::uint8_t, kTlshBodyBytes>& b) {
  return body_distance(a, b);
}

int tlsh_distance(const TlshDigest& a, const TlshDigest& b, bool include_length) {
  return tlsh_header_distance(a, b, include_length) + body_distance(a.body(), b.body());
}

}  // namespace hashsieve::digest
