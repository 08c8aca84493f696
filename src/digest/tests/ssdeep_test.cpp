// ssdeep adapter: agreement with the `ssdeep` CLI, streaming, comparison.
#include "hashsieve/digest/ssdeep.h"

#include <gtest/gtest.h>

#include "real_files.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "hashsieve/core/file.h"

namespace hashsieve::digest {
namespace {

using Bytes = std::vector<std::uint8_t>;

using real_files::run;
using real_files::sample_files;

std::string hash_bytes(std::span<const std::uint8_t> data, std::size_t piece = 0) {
  SsdeepHasher h;
  if (piece == 0) piece = std::max<std::size_t>(data.size(), 1);
  for (std::size_t off = 0; off < data.size(); off += piece) {
    h.update(data.subspan(off, std::min(piece, data.size() - off)));
  }
  auto r = h.finish();
  EXPECT_TRUE(r.ok()) << r.error().message();
  return r.ok() ? *r : std::string();
}

TEST(SsdeepTest, MatchesSsdeepCliOnRealFiles) {
  ASSERT_FALSE(run("command -v ssdeep").empty()) << "the ssdeep CLI is missing: scripts/setup.sh installs it";
  const auto files = sample_files(60, 11);
  ASSERT_GE(files.size(), 50u);
  for (const auto& path : files) {
    SCOPED_TRACE(path);
    auto file = MappedFile::open(path);
    ASSERT_TRUE(file.ok()) << file.error().message();
    // Output: a header line, then `hash,"basename"`.
    const std::string out = run("ssdeep -b '" + path + "' 2>/dev/null");
    const auto line_start = out.find('\n');
    ASSERT_NE(line_start, std::string::npos) << out;
    const auto comma = out.find(",\"", line_start);
    ASSERT_NE(comma, std::string::npos) << out;
    const std::string expected = out.substr(line_start + 1, comma - line_start - 1);
    EXPECT_EQ(hash_bytes(file->bytes()), expected);
    // Announcing the length is an optimisation only.
    SsdeepHasher announced;
    announced.set_expected_length(file->size());
    announced.update(file->bytes());
    auto r = announced.finish();
    ASSERT_TRUE(r.ok()) << r.error().message();
    EXPECT_EQ(*r, expected);
  }
}

TEST(SsdeepTest, StreamingInPiecesMatchesOneShot) {
  Bytes data(300000);
  std::mt19937_64 rng(5);
  for (auto& b : data) b = static_cast<std::uint8_t>(rng() % 7 == 0 ? rng() : 'a' + rng() % 3);
  const std::string whole = hash_bytes(data);
  ASSERT_FALSE(whole.empty());
  for (std::size_t piece : {1u, 7u, 64u, 4096u, 65537u}) {
    SCOPED_TRACE(piece);
    EXPECT_EQ(hash_bytes(data, piece), whole);
  }
}

TEST(SsdeepTest, WrongAnnouncedLengthIsAnError) {
  Bytes data(5000, 'x');
  SsdeepHasher h;
  h.set_expected_length(data.size() + 1);
  h.update(data);
  EXPECT_FALSE(h.finish().ok());
}

TEST(SsdeepTest, CompareScores) {
  auto file = MappedFile::open("/usr/bin/ls");
  ASSERT_TRUE(file.ok());
  const std::string ls = hash_bytes(file->bytes());
  // A lightly edited copy scores high but below 100; unrelated data scores 0.
  Bytes edited(file->bytes().begin(), file->bytes().end());
  for (std::size_t i = 0; i < edited.size(); i += edited.size() / 8) edited[i] ^= 0x55;
  Bytes noise(file->size());
  std::mt19937_64 rng(9);
  for (auto& b : noise) b = static_cast<std::uint8_t>(rng());
  struct Case {
    std::string name;
    std::string other;
    int min, max;
  };
  const Case cases[] = {
      {"identical", ls, 100, 100},
      {"edited copy", hash_bytes(edited), 50, 99},
      {"random bytes", hash_bytes(noise), 0, 0},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const auto score = ssdeep_compare(ls, c.other);
    ASSERT_TRUE(score.ok()) << score.error().message();
    EXPECT_GE(*score, c.min);
    EXPECT_LE(*score, c.max);
    const auto reverse = ssdeep_compare(c.other, ls);
    ASSERT_TRUE(reverse.ok());
    EXPECT_EQ(*reverse, *score);
  }
}

TEST(SsdeepTest, MalformedDigestIsAParseError) {
  const std::string good = "3:ZO5bZJVfB4w470P2d9IvBUz+4n:ZOV7l20PNBUTn";
  const std::string malformed[] = {"", "garbage", "3", "3:abc", "x:abc:def",
                                   std::string("3:ab\0c:def", 10)};
  for (const auto& bad : malformed) {
    SCOPED_TRACE(bad);
    for (const auto& r : {ssdeep_compare(bad, good), ssdeep_compare(good, bad)}) {
      ASSERT_FALSE(r.ok());
      EXPECT_EQ(r.error().code(), ErrorCode::parse_error);
    }
  }
  EXPECT_TRUE(ssdeep_compare(good, good).ok());
}

}  // namespace
}  // namespace hashsieve::digest
