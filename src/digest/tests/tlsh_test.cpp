// TLSH: our implementation against Debian's libtlsh 3.4.4 (linked in as the
// reference) and its `tlsh` CLI, plus the text form's parser.
#include "hashsieve/digest/tlsh.h"

#include <gtest/gtest.h>

#include "real_files.h"
#include <tlsh.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "hashsieve/core/file.h"

// libtlsh's length-class function; a global symbol of libtlsh.a.
unsigned char l_capturing(unsigned int len);

namespace hashsieve::digest {
namespace {

using Bytes = std::vector<std::uint8_t>;

// libtlsh's digest of `data`, fed in pieces of `piece` bytes (0: one piece);
// "" where libtlsh gives none.
std::string reference_hash(const Bytes& data, std::size_t piece = 0) {
  Tlsh t;
  if (piece == 0) piece = std::max<std::size_t>(data.size(), 1);
  for (std::size_t off = 0; off < data.size(); off += piece) {
    t.update(data.data() + off, static_cast<unsigned>(std::min(piece, data.size() - off)));
  }
  t.final();
  return t.getHash();
}

constexpr TlshKernel kKernels[] = {TlshKernel::best, TlshKernel::portable};

const char* kernel_name(TlshKernel k) { return k == TlshKernel::best ? "best" : "portable"; }

// Our digest as the same text ("" for none), fed in pieces sized by `pieces`
// cyclically (empty: one piece).
std::string our_hash(const Bytes& data, const std::vector<std::size_t>& pieces = {},
                     TlshKernel kernel = TlshKernel::best) {
  TlshHasher h(kernel);
  if (pieces.empty()) {
    h.update(data);
  } else {
    std::size_t off = 0;
    for (std::size_t i = 0; off < data.size(); ++i) {
      const std::size_t n = std::min(pieces[i % pieces.size()], data.size() - off);
      h.update(std::span(data).subspan(off, n));
      off += n;
    }
  }
  const auto d = h.finish();
  return d ? d->to_hex() : std::string();
}

Bytes random_bytes(std::size_t n, std::uint64_t seed, unsigned alphabet = 256) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<unsigned> pick(0, alphabet - 1);
  Bytes out(n);
  for (auto& b : out) b = static_cast<std::uint8_t>(pick(rng));
  return out;
}

// Text-like bytes: words from a small vocabulary, so the histogram is skewed
// the way real files are.
Bytes texty_bytes(std::size_t n, std::uint64_t seed) {
  static const char* const kWords[] = {"the ", "quick ", "brown ", "fox\n", "jumps ", "over ",
                                       "lazy ", "dog. ", "{\"k\": ", "1234, ", "ELF\x7f"};
  std::mt19937_64 rng(seed);
  Bytes out;
  while (out.size() < n) {
    const char* w = kWords[rng() % std::size(kWords)];
    for (; *w && out.size() < n; ++w) out.push_back(static_cast<std::uint8_t>(*w));
  }
  return out;
}

struct Case {
  std::string name;
  Bytes data;
};

std::vector<Case> differential_cases() {
  std::vector<Case> cases;
  const std::size_t lengths[] = {0,   1,   4,    5,    100,  255,  256,   257,   300,
                                 511, 656, 657,  1000, 3199, 3200, 4096,  4097,  10007,
                                 65536, 100003, std::size_t{1} << 20};
  std::uint64_t seed = 1;
  for (std::size_t n : lengths) {
    cases.push_back({"random/" + std::to_string(n), random_bytes(n, seed++)});
    cases.push_back({"text/" + std::to_string(n), texty_bytes(n, seed++)});
  }
  // Low variation: whether enough buckets fill depends on the alphabet.
  for (std::size_t n : {std::size_t{256}, std::size_t{4096}, std::size_t{1} << 20}) {
    cases.push_back({"zeros/" + std::to_string(n), Bytes(n, 0)});
    cases.push_back({"ff/" + std::to_string(n), Bytes(n, 0xff)});
    for (unsigned alphabet : {2u, 3u, 4u, 8u}) {
      cases.push_back({"alphabet" + std::to_string(alphabet) + "/" + std::to_string(n),
                       random_bytes(n, seed++, alphabet)});
    }
  }
  Bytes periodic(8192);
  for (std::size_t i = 0; i < periodic.size(); ++i) periodic[i] = static_cast<std::uint8_t>(i % 7);
  cases.push_back({"period7/8192", periodic});
  // Related inputs, so that distances cover small values too.
  Bytes base = texty_bytes(20000, 99);
  for (int edits : {1, 10, 100, 1000}) {
    Bytes v = base;
    std::mt19937_64 rng(static_cast<std::uint64_t>(edits));
    for (int e = 0; e < edits; ++e) v[rng() % v.size()] = static_cast<std::uint8_t>(rng());
    cases.push_back({"edited" + std::to_string(edits), std::move(v)});
  }
  return cases;
}

TEST(TlshTest, MatchesLibtlshOnGeneratedInputs) {
  int hashed = 0, unhashed = 0;
  for (const auto& c : differential_cases()) {
    SCOPED_TRACE(c.name);
    const std::string expected = reference_hash(c.data);
    for (TlshKernel k : kKernels) EXPECT_EQ(our_hash(c.data, {}, k), expected) << kernel_name(k);
    (expected.empty() ? unhashed : hashed)++;
  }
  // The case list must exercise both outcomes.
  EXPECT_GT(hashed, 20);
  EXPECT_GT(unhashed, 5);
}

TEST(TlshTest, MatchesLibtlshOnEveryLengthUpTo5000) {
  // Covers the 256-byte minimum and the first two length-class formulas.
  const Bytes data = random_bytes(5000, 7);
  for (std::size_t n = 0; n <= data.size(); n += (n < 700 ? 1 : 13)) {
    SCOPED_TRACE(n);
    const Bytes prefix(data.begin(), data.begin() + static_cast<std::ptrdiff_t>(n));
    const std::string expected = reference_hash(prefix);
    for (TlshKernel k : kKernels) ASSERT_EQ(our_hash(prefix, {}, k), expected) << kernel_name(k);
  }
}

TEST(TlshTest, LengthClassMatchesLibtlsh) {
  // Every length to 2^21, then a sweep across the 32-bit range in odd steps,
  // plus the neighbours of each class boundary we find on the way.
  for (std::uint32_t n = 0; n < (1u << 21); ++n) {
    ASSERT_EQ(tlsh_length_class(n), l_capturing(n)) << n;
  }
  std::uint8_t previous = l_capturing(1u << 21);
  for (std::uint64_t n = (1u << 21); n <= 0xFFFFFFFFull; n += 9973) {
    const auto n32 = static_cast<std::uint32_t>(n);
    const std::uint8_t now = l_capturing(n32);
    ASSERT_EQ(tlsh_length_class(n32), now) << n32;
    if (now != previous) {
      for (std::uint32_t m = n32 - 9973; m <= n32; ++m) {
        ASSERT_EQ(tlsh_length_class(m), l_capturing(m)) << m;
      }
      previous = now;
    }
  }
  EXPECT_EQ(tlsh_length_class(0xFFFFFFFFu), l_capturing(0xFFFFFFFFu));
}

TEST(TlshTest, StreamingInPiecesMatchesOneShot) {
  const std::vector<std::vector<std::size_t>> splits = {
      {1}, {2}, {3}, {4}, {5}, {7, 1, 13}, {255}, {256, 1}, {4093}, {65537, 3}};
  for (const Bytes& data : {random_bytes(300, 11), texty_bytes(70001, 12),
                            random_bytes(200000, 13, 4)}) {
    const std::string expected = reference_hash(data);
    for (const auto& split : splits) {
      SCOPED_TRACE(testing::Message() << data.size() << " bytes, first piece " << split[0]);
      for (TlshKernel k : kKernels) {
        EXPECT_EQ(our_hash(data, split, k), expected) << kernel_name(k);
      }
      // libtlsh itself fed in pieces agrees too (a check on the harness).
      EXPECT_EQ(reference_hash(data, split[0]), expected);
    }
  }
}

TEST(TlshTest, KernelsAgreeOnLongSkewedInputs) {
  // Long runs of one byte put every increment of a salt on one bucket, the
  // case the vector path's rotating histogram copies exist for; mixing runs
  // with random stretches checks the hand-over between the copies.
  Bytes data;
  std::mt19937_64 rng(3);
  while (data.size() < (3u << 20)) {
    const std::size_t run = rng() % 5000;
    const auto value = static_cast<std::uint8_t>(rng());
    data.insert(data.end(), run, value);
    const Bytes noise = random_bytes(rng() % 3000, rng());
    data.insert(data.end(), noise.begin(), noise.end());
  }
  const std::string expected = reference_hash(data);
  ASSERT_FALSE(expected.empty());
  for (TlshKernel k : kKernels) {
    EXPECT_EQ(our_hash(data, {}, k), expected) << kernel_name(k);
    EXPECT_EQ(our_hash(data, {100000, 63, 65, 1}, k), expected) << kernel_name(k);
  }
  if (!TlshHasher::vector_kernel_available()) {
    std::printf("note: no AVX-512 VBMI here; both runs used the portable loop\n");
  }
}

TEST(TlshTest, DistancesMatchLibtlsh) {
  std::vector<std::string> hexes;
  for (const auto& c : differential_cases()) {
    std::string h = reference_hash(c.data);
    if (!h.empty()) hexes.push_back(std::move(h));
  }
  ASSERT_GT(hexes.size(), 20u);
  int small = 0;
  for (const auto& ha : hexes) {
    for (const auto& hb : hexes) {
      SCOPED_TRACE(ha + " vs " + hb);
      Tlsh ra, rb;
      ASSERT_EQ(ra.fromTlshStr(ha.c_str()), 0);
      ASSERT_EQ(rb.fromTlshStr(hb.c_str()), 0);
      const auto a = TlshDigest::parse(ha);
      const auto b = TlshDigest::parse(hb);
      ASSERT_TRUE(a.ok() && b.ok());
      for (bool len : {true, false}) {
        const int expected = ra.totalDiff(&rb, len);
        EXPECT_EQ(tlsh_distance(*a, *b, len), expected) << "len=" << len;
        if (expected > 0 && expected < 100) ++small;
      }
    }
  }
  EXPECT_GT(small, 0) << "no near pairs: the related-input cases do not do their job";
}

TEST(TlshTest, DistanceOfSelfIsZeroAndSymmetric) {
  const auto a = TlshHasher::digest_of(texty_bytes(5000, 1));
  const auto b = TlshHasher::digest_of(texty_bytes(5000, 2));
  ASSERT_TRUE(a && b);
  EXPECT_EQ(tlsh_distance(*a, *a), 0);
  EXPECT_EQ(tlsh_distance(*a, *b), tlsh_distance(*b, *a));
  EXPECT_GT(tlsh_distance(*a, *b), 0);
}

using real_files::run;
using real_files::sample_files;

// tlsh_header_distance + tlsh_body_distance is libtlsh's totalDiff exactly
// (the similarity index prunes on the header part alone and scores the rest
// from stored bodies), and the header part is the distance between two
// digests with equal bodies, so it is a lower bound.
TEST(TlshTest, DistancePartsSumToLibtlshDistance) {
  std::mt19937_64 rng(11);
  auto random_digest = [&] {
    std::array<std::uint8_t, kTlshBodyBytes> body{};
    for (auto& b : body) b = static_cast<std::uint8_t>(rng());
    const std::uint64_t r = rng();
    return TlshDigest::from_fields(static_cast<std::uint8_t>(r), static_cast<std::uint8_t>(r >> 8),
                                   static_cast<std::uint8_t>(r >> 16), static_cast<std::uint8_t>(r >> 20), body);
  };
  // A digest near `d`: a few codes one or two steps off, header nudged.
  auto near = [&](const TlshDigest& d) {
    auto body = d.body();
    for (std::uint64_t k = rng() % 30; k > 0; --k) body[rng() % body.size()] ^= static_cast<std::uint8_t>(1u << (rng() % 8));
    const auto step = [&](std::uint8_t v) { return static_cast<std::uint8_t>(v + rng() % 3 - 1); };
    return TlshDigest::from_fields(rng() % 4 == 0 ? step(d.checksum()) : d.checksum(), step(d.lvalue()),
                                   step(d.q1_ratio()) & 15, step(d.q2_ratio()) & 15, body);
  };
  struct DigestsCase {
    std::string name;
    std::vector<TlshDigest> digests;
  };
  std::vector<DigestsCase> cases;
  {
    DigestsCase c{"generated inputs", {}};
    for (const auto& g : differential_cases()) {
      if (auto d = TlshHasher::digest_of(g.data)) c.digests.push_back(*d);
    }
    cases.push_back(std::move(c));
  }
  {
    DigestsCase c{"random fields", {}};
    for (int i = 0; i < 60; ++i) c.digests.push_back(random_digest());
    cases.push_back(std::move(c));
  }
  {
    DigestsCase c{"random families", {}};
    for (int f = 0; f < 6; ++f) {
      const auto base = random_digest();
      c.digests.push_back(base);
      for (int i = 0; i < 10; ++i) c.digests.push_back(near(base));
    }
    cases.push_back(std::move(c));
  }
  {
    DigestsCase c{"real files", {}};
    for (const auto& path : sample_files(60, 7)) {
      auto file = MappedFile::open(path);
      if (!file.ok()) continue;
      if (auto d = TlshHasher::digest_of(file->bytes())) c.digests.push_back(*d);
    }
    cases.push_back(std::move(c));
  }
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    ASSERT_GE(c.digests.size(), 20u);
    int compared = 0;
    for (const auto& a : c.digests) {
      Tlsh ra;
      ASSERT_EQ(ra.fromTlshStr(a.to_hex().c_str()), 0);
      for (const auto& b : c.digests) {
        Tlsh rb;
        ASSERT_EQ(rb.fromTlshStr(b.to_hex().c_str()), 0);
        for (bool len : {true, false}) {
          const int header = tlsh_header_distance(a, b, len);
          const int body = tlsh_body_distance(a.body(), b.body());
          ASSERT_EQ(header + body, ra.totalDiff(&rb, len)) << a.to_string() << " vs " << b.to_string() << " len=" << len;
          ASSERT_EQ(header + body, tlsh_distance(a, b, len));
          const auto b_with_a_body = TlshDigest::from_fields(b.checksum(), b.lvalue(), b.q1_ratio(), b.q2_ratio(), a.body());
          ASSERT_EQ(header, tlsh_distance(a, b_with_a_body, len));
          ASSERT_EQ(body, tlsh_body_distance(b.body(), a.body()));
          ++compared;
        }
      }
    }
    EXPECT_GT(compared, 400);
  }
}

TEST(TlshTest, MatchesTlshCliOnRealFiles) {
  ASSERT_FALSE(run("command -v tlsh").empty()) << "the tlsh CLI is missing: scripts/setup.sh installs tlsh-tools";
  const auto files = sample_files(60, 7);
  ASSERT_GE(files.size(), 50u);
  int hashed = 0;
  for (const auto& path : files) {
    SCOPED_TRACE(path);
    auto file = MappedFile::open(path);
    ASSERT_TRUE(file.ok()) << file.error().message();
    TlshHasher h;
    h.update(file->bytes());
    const auto ours = h.finish();
    // The CLI prints "<hex>\t<path>" or nothing (to stdout) when there is no hash.
    const std::string out = run("tlsh -f '" + path + "' 2>/dev/null");
    const std::string expected = out.empty() ? "" : out.substr(0, out.find('\t'));
    EXPECT_EQ(ours ? ours->to_hex() : "", expected);
    if (ours) ++hashed;
  }
  EXPECT_GE(hashed, 40);
}

TEST(TlshTest, ParseRejectsMalformedText) {
  const std::string good = reference_hash(texty_bytes(4000, 5));
  ASSERT_EQ(good.size(), kTlshHexChars);
  struct BadCase {
    std::string name;
    std::string text;
  };
  std::string nonhex = good;
  nonhex[40] = 'G';
  std::string nonhex_prefixed = "T1" + good;
  nonhex_prefixed[71] = ' ';
  const BadCase cases[] = {
      {"empty", ""},
      {"short", good.substr(0, 69)},
      {"long", good + "0"},
      {"T1 short", "T1" + good.substr(0, 68)},
      {"T1 long", "T1" + good + "A"},
      {"bad prefix", "T2" + good},
      {"lower-case prefix", "t1" + good},
      {"prefix with body of 72", "XX" + good},
      {"non-hex", nonhex},
      {"non-hex last after prefix", nonhex_prefixed},
      {"trailing newline", good.substr(0, 69) + "\n"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const auto r = TlshDigest::parse(c.text);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code(), ErrorCode::parse_error);
  }
}

TEST(TlshTest, ParseFormatRoundTrip) {
  for (const auto& c : differential_cases()) {
    const std::string hex = reference_hash(c.data);
    if (hex.empty()) continue;
    SCOPED_TRACE(c.name);
    const auto bare = TlshDigest::parse(hex);
    ASSERT_TRUE(bare.ok()) << bare.error().message();
    EXPECT_EQ(bare->to_hex(), hex);
    EXPECT_EQ(bare->to_string(), "T1" + hex);
    const auto prefixed = TlshDigest::parse("T1" + hex);
    ASSERT_TRUE(prefixed.ok());
    EXPECT_EQ(*prefixed, *bare);
    std::string lower = hex;
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](char ch) { return static_cast<char>(std::tolower(ch)); });
    const auto from_lower = TlshDigest::parse(lower);
    ASSERT_TRUE(from_lower.ok());
    EXPECT_EQ(*from_lower, *bare);
    // Fields survive a rebuild from the accessors.
    EXPECT_EQ(TlshDigest::from_fields(bare->checksum(), bare->lvalue(), bare->q1_ratio(),
                                      bare->q2_ratio(), bare->body()),
              *bare);
  }
}

TEST(TlshTest, FieldsMatchLibtlshLayout) {
  // Header nibbles are swapped in the text; the body is printed last byte
  // first. Check against a digest built from known fields.
  std::array<std::uint8_t, kTlshBodyBytes> body{};
  for (std::size_t i = 0; i < body.size(); ++i) body[i] = static_cast<std::uint8_t>(i * 7 + 1);
  const auto d = TlshDigest::from_fields(0x12, 0x34, 0x5, 0x6, body);
  const std::string hex = d.to_hex();
  EXPECT_EQ(hex.substr(0, 6), "214356");
  EXPECT_EQ(hex.substr(6, 2), "DA");    // body[31] = 31*7+1 = 218
  EXPECT_EQ(hex.substr(68, 2), "01");   // body[0]
  Tlsh ref;
  ASSERT_EQ(ref.fromTlshStr(hex.c_str()), 0);
  EXPECT_EQ(std::string(ref.getHash()), hex);
}

}  // namespace
}  // namespace hashsieve::digest
