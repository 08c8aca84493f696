// SDBF generation: byte-exact reproduction of the sdhash 3.4 golden vectors,
// and the fast passes (ranks, popularity scores, SHA-1) against literal
// transcriptions of the spec.
#include <openssl/evp.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "../sdbf_scan.h"
#include "../sdbf_tables.h"
#include "../sha1_feature.h"
#include "hashsieve/digest/sdbf.h"
#include "hashsieve/digest/sdbf_generator.h"

namespace hashsieve::digest {
namespace {

const std::string kData = HASHSIEVE_TEST_DATA "/sdhash/";
const std::string kBig = HASHSIEVE_BINARY_DIR "/testdata/big/";
const std::string kSynDir = HASHSIEVE_BINARY_DIR "/testdata/synthetic/";

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << "cannot open " << path;
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::span<const std::uint8_t> bytes_of(const std::string& s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

std::string hex(const std::uint8_t* p, std::size_t n) {
  std::string out;
  char buf[3];
  for (std::size_t i = 0; i < n; ++i) {
    std::snprintf(buf, sizeof buf, "%02x", p[i]);
    out += buf;
  }
  return out;
}

std::string evp_hex(const EVP_MD* md, std::span<const std::uint8_t> data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EXPECT_EQ(EVP_Digest(data.data(), data.size(), out, &n, md, nullptr), 1);
  return hex(out, n);
}

std::vector<std::uint64_t> read_numbers(const std::string& path) {
  std::istringstream in(read_file(path));
  std::vector<std::uint64_t> v;
  for (std::uint64_t x; in >> x;) v.push_back(x);
  return v;
}

// --- literal transcriptions of the spec (the oracles) -----------------------

std::vector<std::uint16_t> literal_ranks(std::span<const std::uint8_t> buf) {
  const std::vector<std::uint64_t> e = read_numbers(kData + "entropy64_int.txt");
  const std::vector<std::uint64_t> ranks = read_numbers(kData + "entropy_ranks.txt");
  const std::size_t len = buf.size();
  std::vector<std::uint16_t> rank(len, 0);
  for (std::size_t p = 0; len > 64 && p < len - 64; ++p) {
    unsigned c[256] = {};
    for (std::size_t k = 0; k < 64; ++k) ++c[buf[p + k]];
    std::uint64_t ent = 0;
    for (unsigned x : c) ent += x > 0 ? e[x] : 0;
    rank[p] = static_cast<std::uint16_t>(ranks[ent >> 10]);
  }
  return rank;
}

// Spec section 3, line by line (the reference's near-quadratic scan).
std::vector<std::uint8_t> literal_scores(const std::vector<std::uint16_t>& rank) {
  const std::size_t len = rank.size();
  std::vector<std::uint8_t> score(len, 0);
  if (len <= 64) return score;
  std::size_t mp = 0;
  std::uint16_t mr = rank[0];
  std::size_t i = 0;
  while (i < len - 64) {
    if (i > 0 && mr > 0) {
      while (rank[i + 64] >= mr && i < mp && i < len - 64 + 1) {
        if (rank[i + 64] == mr) mp = i + 64;
        score[mp] += 1;
        i += 1;
      }
    }
    mp = i;
    mr = rank[i];
    for (std::size_t j = i + 1; j <= i + 63; ++j) {
      if (rank[j] != 0 && rank[j] < mr) {
        mr = rank[j];
        mp = j;
      } else if (mp == j - 1 && rank[j] == mr) {
        mp = j;
      }
    }
    if (rank[mp] > 0) score[mp] += 1;
    i += 1;
  }
  return score;
}

// --- tables, SHA-1 ------------------------------------------------------------

TEST(SdbfTables, EmbeddedTablesEqualTheReferenceFiles) {
  const auto e = read_numbers(kData + "entropy64_int.txt");
  const auto r = read_numbers(kData + "entropy_ranks.txt");
  ASSERT_EQ(e.size(), kSdbfEntropy64.size());
  ASSERT_EQ(r.size(), kSdbfEntropyRanks.size());
  for (std::size_t i = 0; i < e.size(); ++i) EXPECT_EQ(e[i], kSdbfEntropy64[i]) << i;
  for (std::size_t i = 0; i < r.size(); ++i) EXPECT_EQ(r[i], kSdbfEntropyRanks[i]) << i;
}

TEST(Sha1Feature, AllPathsAgreeWithOpenSsl) {
  std::mt19937_64 rng(7);
  std::vector<std::uint8_t> buf(64 * 300);
  for (auto& b : buf) b = static_cast<std::uint8_t>(rng());
  // A few structured messages too: all zeros, all 0xFF, 0x80 (the pad byte).
  std::fill(buf.begin(), buf.begin() + 64, 0);
  std::fill(buf.begin() + 64, buf.begin() + 128, 0xFF);
  std::fill(buf.begin() + 128, buf.begin() + 192, 0x80);
  const bool ni = sha1_feature_has_shani();
  if (!ni) std::printf("note: no SHA-NI on this CPU, only the portable path is checked\n");
  for (std::size_t m = 0; m + 3 < buf.size() / 64; ++m) {
    SCOPED_TRACE(m);
    const std::uint8_t* a = buf.data() + 64 * m;
    const std::uint8_t* b = a + 64;
    {
      // Four lanes, with a repeated message and unaligned neighbours.
      const std::uint8_t* msgs[4] = {a, b, a + 128, m % 2 == 0 ? a : a + 37};
      std::uint8_t d4[4][20];
      sha1_feature_x4({msgs[0], msgs[1], msgs[2], msgs[3]}, {d4[0], d4[1], d4[2], d4[3]});
      for (int l = 0; l < 4; ++l) EXPECT_EQ(hex(d4[l], 20), evp_hex(EVP_sha1(), {msgs[l], 64})) << "x4 lane " << l;
      if (ni) {
        std::uint8_t e4[4][20];
        sha1_feature_x4_shani({msgs[0], msgs[1], msgs[2], msgs[3]}, {e4[0], e4[1], e4[2], e4[3]});
        for (int l = 0; l < 4; ++l) EXPECT_EQ(hex(e4[l], 20), hex(d4[l], 20)) << "x4 SHA-NI lane " << l;
      }
    }
    const std::string want_a = evp_hex(EVP_sha1(), {a, 64});
    const std::string want_b = evp_hex(EVP_sha1(), {b, 64});
    std::uint8_t da[20], db[20];
    sha1_feature_portable(a, da);
    EXPECT_EQ(hex(da, 20), want_a);
    sha1_feature(a, da);
    EXPECT_EQ(hex(da, 20), want_a);
    sha1_feature_x2(a, b, da, db);
    EXPECT_EQ(hex(da, 20), want_a);
    EXPECT_EQ(hex(db, 20), want_b);
    if (ni) {
      sha1_feature_shani(a, da);
      EXPECT_EQ(hex(da, 20), want_a);
      sha1_feature_x2_shani(a, b, da, db);
      EXPECT_EQ(hex(da, 20), want_a);
      EXPECT_EQ(hex(db, 20), want_b);
    }
  }
}

// --- rank / score passes against the literal spec ------------------------------

// Buffers that hit every branch of the scan: random, small alphabets (equal
// rank runs), zero-heavy (rank-0 windows at the low end), counters and
// permutations (rank 0 at the high end), periodic data, mixtures.
std::vector<std::uint8_t> make_buffer(std::mt19937_64& rng, int kind, std::size_t len) {
  std::vector<std::uint8_t> b(len);
  switch (kind) {
    case 0:
      for (auto& x : b) x = static_cast<std::uint8_t>(rng());
      break;
    case 1: {
      const unsigned alpha = 2 + static_cast<unsigned>(rng() % 60);
      for (auto& x : b) x = static_cast<std::uint8_t>(rng() % alpha);
      break;
    }
    case 2: {
      const unsigned pct = 1 + static_cast<unsigned>(rng() % 40);
      for (auto& x : b) x = (rng() % 100 < pct) ? static_cast<std::uint8_t>(rng()) : 0;
      break;
    }
    case 3: {
      // Concatenated permutations of 0..255 or a counter: all-distinct
      // windows, entropy at the top of the range.
      std::vector<std::uint8_t> perm(256);
      for (int v = 0; v < 256; ++v) perm[static_cast<std::size_t>(v)] = static_cast<std::uint8_t>(v);
      const bool counter = rng() % 2 == 0;
      for (std::size_t i = 0; i < len; ++i) {
        if (i % 256 == 0 && !counter) std::shuffle(perm.begin(), perm.end(), rng);
        b[i] = perm[i % 256];
      }
      break;
    }
    case 4: {
      const std::size_t period = 3 + rng() % 300;
      for (std::size_t i = 0; i < len; ++i) b[i] = static_cast<std::uint8_t>((i % period) * 37 % 251);
      for (std::size_t i = 0; i < len / 50; ++i) b[rng() % len] = static_cast<std::uint8_t>(rng());
      break;
    }
    default: {
      // Segments of the other kinds, so region boundaries mix behaviours.
      std::size_t i = 0;
      while (i < len) {
        const std::size_t seg = std::min<std::size_t>(len - i, 32 + rng() % 700);
        auto part = make_buffer(rng, static_cast<int>(rng() % 5), seg);
        std::copy(part.begin(), part.end(), b.begin() + static_cast<std::ptrdiff_t>(i));
        i += seg;
      }
    }
  }
  return b;
}

void check_scan(std::span<const std::uint8_t> buf) {
  const auto want_rank = literal_ranks(buf);
  std::vector<std::uint16_t> rank(buf.size(), 0xAAAA);
  sdbf_ranks_portable(buf.data(), buf.size(), rank.data());
  ASSERT_EQ(rank, want_rank) << "portable";
  if (sdbf_scan_has_avx512()) {
    std::fill(rank.begin(), rank.end(), 0xAAAA);
    sdbf_ranks_avx512(buf.data(), buf.size(), rank.data());
    ASSERT_EQ(rank, want_rank) << "avx512";
  }
  std::fill(rank.begin(), rank.end(), 0xAAAA);
  sdbf_ranks(buf.data(), buf.size(), rank.data());
  ASSERT_EQ(rank, want_rank) << "dispatch";
  const auto want = literal_scores(want_rank);
  std::vector<std::uint8_t> score(buf.size(), 0xAA);
  sdbf_scores_portable(rank.data(), rank.size(), score.data());
  ASSERT_EQ(score, want) << "portable";
  if (sdbf_scan_has_avx512()) {
    std::fill(score.begin(), score.end(), 0xAA);
    sdbf_scores_avx512(rank.data(), rank.size(), score.data());
    ASSERT_EQ(score, want) << "avx512";
  }
  std::fill(score.begin(), score.end(), 0xAA);
  sdbf_scores(rank.data(), rank.size(), score.data());
  ASSERT_EQ(score, want) << "dispatch";
  // Feature selection over the same scores, at the thresholds in use.
  for (std::uint8_t min_score : {15, 16, 17, 30}) {
    std::vector<std::uint32_t> want_sel;
    for (std::size_t p = 0; p < want.size(); ++p) {
      if (want[p] >= min_score) want_sel.push_back(static_cast<std::uint32_t>(p));
    }
    std::vector<std::uint32_t> sel(want.size() + 1);
    sel.resize(sdbf_select_portable(want.data(), want.size(), min_score, sel.data()));
    ASSERT_EQ(sel, want_sel) << "portable select " << int{min_score};
    if (sdbf_scan_has_avx512()) {
      sel.assign(want.size() + 1, 0);
      sel.resize(sdbf_select_avx512(want.data(), want.size(), min_score, sel.data()));
      ASSERT_EQ(sel, want_sel) << "avx512 select " << int{min_score};
    }
  }
}

TEST(SdbfScan, MatchesLiteralSpecOnRandomAndLowEntropyBuffers) {
  std::mt19937_64 rng(12345);
  for (int iter = 0; iter < 600; ++iter) {
    const int kind = iter % 6;
    // Lengths around the 64-byte edges and up to a few KiB.
    const std::size_t len = iter < 60 ? static_cast<std::size_t>(iter) + 40 : 1 + rng() % 6000;
    SCOPED_TRACE(testing::Message() << "iter " << iter << " kind " << kind << " len " << len);
    const auto buf = make_buffer(rng, kind, len);
    check_scan(buf);
    if (HasFatalFailure()) return;
  }
}

TEST(SdbfScan, MatchesLiteralSpecOnGoldenInputs) {
  for (const char* name : {"text_gpl2.txt", "cat.elf", "half_sparse_64k.bin", "zeros_64k.bin"}) {
    SCOPED_TRACE(name);
    const std::string data = read_file(kData + "inputs/" + name);
    check_scan(bytes_of(data));
    if (HasFatalFailure()) return;
  }
}

// --- golden digests ------------------------------------------------------------

// Digest text of one input as the reference CLI makes it: stream (block 0)
// or block mode with block_size; nothing for inputs under 512 bytes.
std::string digest_text(const std::string& name, std::span<const std::uint8_t> data,
                        std::uint32_t block_size, unsigned threads = 1) {
  const auto d = block_size == 0 ? make_stream_sdbf(name, data)
                                 : make_block_sdbf(name, data, block_size, threads);
  return d ? format_sdbf(*d) : std::string();
}

const char* const kInputs[] = {"min_512.bin",  "tiny_511.bin", "zeros_64k.bin",
                               "half_sparse_64k.bin", "text_gpl2.txt", "text_gpl2_edited.txt",
                               "cat.elf", "ls.elf", "dir.elf", "gpgv.elf", "gpg.elf",
                               "random_1m.bin", "random_1m_edited.bin"};

TEST(SdbfGenerate, InputsHaveTheirRecordedSha256) {
  const std::string readme = read_file(kData + "inputs/README.md");
  for (const char* name : kInputs) {
    SCOPED_TRACE(name);
    const std::string data = read_file(kData + "inputs/" + name);
    EXPECT_NE(readme.find(evp_hex(EVP_sha256(), bytes_of(data)) + "  " + name), std::string::npos);
  }
}

TEST(SdbfGenerate, PerInputGoldenDigests) {
  struct Case {
    std::string expected;
    std::string input;
    std::uint32_t block_size;
  };
  std::vector<Case> cases;
  for (const char* in : kInputs) cases.push_back({std::string(in) + ".sdbf", in, 0});
  for (const char* in : {"zeros_64k.bin", "half_sparse_64k.bin", "text_gpl2.txt",
                         "text_gpl2_edited.txt", "cat.elf", "ls.elf", "dir.elf", "gpgv.elf",
                         "gpg.elf", "random_1m.bin", "random_1m_edited.bin"}) {
    cases.push_back({std::string(in) + ".b16.sdbf", in, 16384});
  }
  for (const char* in : {"text_gpl2.txt", "cat.elf", "half_sparse_64k.bin", "zeros_64k.bin"}) {
    cases.push_back({std::string(in) + ".b4.sdbf", in, 4096});
  }
  cases.push_back({"text_gpl2.txt.b1.sdbf", "text_gpl2.txt", 1024});
  for (const Case& c : cases) {
    SCOPED_TRACE(c.expected);
    const std::string data = read_file(kData + "inputs/" + c.input);
    const std::string want = read_file(kData + "expected/" + c.expected);
    EXPECT_EQ(digest_text(c.input, bytes_of(data), c.block_size), want);
    if (c.block_size != 0) {
      EXPECT_EQ(digest_text(c.input, bytes_of(data), c.block_size, 3), want) << "3 threads";
    }
  }
  // The empty expectation must come from the size rule, not a missing file.
  EXPECT_TRUE(read_file(kData + "expected/tiny_511.bin.sdbf").empty());
}

TEST(SdbfGenerate, ConcatenatedGoldenDigests) {
  struct Case {
    std::string expected;
    std::uint32_t block_size;
  };
  const Case cases[] = {{"all.sdbf", 0}, {"all.b16.sdbf", 16384}, {"all.b4.sdbf", 4096},
                        {"all.b1.sdbf", 1024}};
  for (const Case& c : cases) {
    SCOPED_TRACE(c.expected);
    std::string got;
    for (const char* in : kInputs) got += digest_text(in, bytes_of(read_file(kData + "inputs/" + in)), c.block_size);
    EXPECT_EQ(got, read_file(kData + "expected/" + c.expected));
  }
}

TEST(SdbfGenerate, StdinGoldenDigest) {
  const std::string data = read_file(kData + "inputs/text_gpl2.txt");
  EXPECT_EQ(digest_text("stdin.0000M", bytes_of(data), 16384),
            read_file(kData + "expected/stdin_text_gpl2.sdbf"));
}

// --- large inputs (regenerated by the sdhash_vectors target) ------------------

std::string big_input(const std::string& name, const char* sha256) {
  std::string data = read_file(kBig + name);
  EXPECT_EQ(evp_hex(EVP_sha256(), bytes_of(data)), sha256) << name;
  return data;
}

TEST(SdbfGenerateBig, Random17mIsBlockModeWith16KiBBlocks) {
  const std::string data = big_input(
      "random_17m.bin", "86f91d863b4a24292e3183578623ffaa5e13e874772802d8b9f22426ac37c167");
  const std::string want = read_file(kData + "expected/random_17m.bin.sdbf");
  for (unsigned threads : {1u, 2u}) {
    SCOPED_TRACE(threads);
    EXPECT_EQ(digest_text("random_17m.bin", bytes_of(data), 16384, threads), want);
  }
}

TEST(SdbfGenerateBig, Random33mStreamCrossesTheChunkBoundary) {
  const std::string data = big_input(
      "random_33m.bin", "e9d0f9cd8fe214487bfc370a7066b028dd95cd38ba6e14a27600aa69940af3ff");
  EXPECT_EQ(digest_text("random_33m.bin", bytes_of(data), 0),
            read_file(kData + "expected/random_33m.bin.b0.sdbf"));
}

TEST(SdbfGenerateBig, Random33mIn16MiBSegments) {
  const std::string data = big_input(
      "random_33m.bin", "e9d0f9cd8fe214487bfc370a7066b028dd95cd38ba6e14a27600aa69940af3ff");
  constexpr std::size_t kSeg = std::size_t{16} << 20;
  std::string got;
  for (std::size_t off = 0; off < data.size(); off += kSeg) {
    char suffix[32];
    std::snprintf(suffix, sizeof suffix, ".%04zuM", off >> 20);
    const auto seg = bytes_of(data).subspan(off, std::min(kSeg, data.size() - off));
    got += digest_text(std::string("random_33m.bin") + suffix, seg, 16384, 2);
  }
  EXPECT_EQ(got, read_file(kData + "expected/random_33m.bin.z16.sdbf"));
}

// --- synthetic stress set ------------------------------------------------------

TEST(SdbfGenerateSynthetic, AllModesMatchTheReference) {
  // inputs.sha256 lists the inputs in generation order, which is the order of
  // the expected files' lines.
  std::istringstream list(read_file(kData + "synthetic/inputs.sha256"));
  std::vector<std::pair<std::string, std::string>> files;  // name, contents
  for (std::string sum, name; list >> sum >> name;) {
    std::string data = read_file(kSynDir + name);
    EXPECT_EQ(evp_hex(EVP_sha256(), bytes_of(data)), sum) << name;
    files.emplace_back(name, std::move(data));
  }
  ASSERT_EQ(files.size(), 155u);
  struct Case {
    std::string expected;
    std::uint32_t block_size;
  };
  const Case cases[] = {{"stream.sdbf", 0}, {"b1.sdbf", 1024}, {"b4.sdbf", 4096}, {"b16.sdbf", 16384}};
  for (const Case& c : cases) {
    SCOPED_TRACE(c.expected);
    std::istringstream want(read_file(kData + "synthetic/expected/" + c.expected));
    std::size_t lines = 0;
    for (const auto& [name, data] : files) {
      const std::string got = digest_text(name, bytes_of(data), c.block_size);
      if (got.empty()) continue;
      std::string line;
      ASSERT_TRUE(std::getline(want, line)) << name;
      EXPECT_EQ(got, line + "\n") << name;
      ++lines;
    }
    std::string rest;
    EXPECT_FALSE(std::getline(want, rest)) << "expected file has more lines";
    EXPECT_EQ(lines, 151u);
  }
}

}  // namespace
}  // namespace hashsieve::digest
