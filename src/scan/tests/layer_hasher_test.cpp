#include "layer_hasher.h"

#include <gtest/gtest.h>

#include "hashsieve/digest/file_digests.h"
#include "scan_fixture.h"

namespace hashsieve::scan {
namespace {

using namespace testing;

TEST(HashLayer, StreamedLargeFileGetsTheSameDigestsAsBuffered) {
  // 17 MiB + a tail: above sdhash's 16 MiB boundary, so block mode; the tail
  // is not a multiple of the 16 KiB block and exercises the last piece.
  const Bytes big = random_bytes((std::size_t{17} << 20) + 12345, 11);
  std::vector<FakeEntry> entries = {file("big.bin", big), file("small", random_bytes(2000, 12))};
  struct Case {
    std::string name;
    std::uint64_t buffered;
    bool with_sieve;  // an is_known that says no: the large file goes through the spool
  };
  const Case cases[] = {{"streamed", std::uint64_t{16} << 20, false},
                        {"spooled", std::uint64_t{16} << 20, true},
                        {"buffered", std::uint64_t{64} << 20, false}};
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    FakeLayer layer(entries, SIZE_MAX);
    LayerHashOptions options;
    options.max_buffered_file_bytes = c.buffered;
    if (c.with_sieve) options.is_known = [](const digest::CryptoDigests&) { return false; };
    LayerHashStats stats;
    auto records = hash_layer(layer, options, stats);
    ASSERT_TRUE(records.ok()) << records.error().message();
    ASSERT_EQ(records->size(), 2u);
    auto want = digest::compute_digests("big.bin", big, digest::DigestSelection{});
    ASSERT_TRUE(want.ok());
    const FileRecord& got = (*records)[0];
    EXPECT_EQ(got.crypto.sha256, want->crypto.sha256);
    EXPECT_EQ(got.crypto.md5, want->crypto.md5);
    EXPECT_EQ(got.crypto.crc32, want->crypto.crc32);
    EXPECT_EQ(got.tlsh, want->tlsh);
    EXPECT_EQ(got.ssdeep, want->ssdeep);
    ASSERT_EQ(got.sdbf.size(), want->sdbf.size());
    for (std::size_t i = 0; i < got.sdbf.size(); ++i) {
      EXPECT_EQ(digest::format_sdbf(got.sdbf[i]), digest::format_sdbf(want->sdbf[i]));
    }
    EXPECT_TRUE(got.similarity_computed);
    EXPECT_EQ(stats.files, 2u);
    EXPECT_EQ(stats.bytes, big.size() + 2000);
  }
}

TEST(HashLayer, SieveSkipsSimilarityForKnownLargeFiles) {
  // Above the buffering limit: the file is spooled, and being known, gets
  // its crypto digests only; the unknown large file gets every digest.
  const Bytes known = random_bytes((std::size_t{17} << 20) + 7, 31);
  const Bytes other = random_bytes((std::size_t{17} << 20) + 9, 32);
  std::vector<FakeEntry> entries = {file("known.bin", known), file("other.bin", other)};
  FakeLayer layer(entries, SIZE_MAX);
  LayerHashOptions options;
  options.max_buffered_file_bytes = std::uint64_t{16} << 20;
  const auto known_sha = sha256_of(known);
  options.is_known = [&](const digest::CryptoDigests& d) { return d.sha256 == known_sha; };
  LayerHashStats stats;
  auto records = hash_layer(layer, options, stats);
  ASSERT_TRUE(records.ok()) << records.error().message();
  ASSERT_EQ(records->size(), 2u);
  const FileRecord& k = (*records)[0];
  EXPECT_EQ(k.crypto.sha256, known_sha);
  EXPECT_FALSE(k.similarity_computed);
  EXPECT_TRUE(k.sdbf.empty());
  EXPECT_FALSE(k.tlsh.has_value());
  EXPECT_FALSE(k.ssdeep.has_value());
  const FileRecord& o = (*records)[1];
  auto want = digest::compute_digests("other.bin", other, digest::DigestSelection{});
  ASSERT_TRUE(want.ok());
  EXPECT_EQ(o.crypto.sha256, want->crypto.sha256);
  EXPECT_EQ(o.crypto.sha1, want->crypto.sha1);
  EXPECT_TRUE(o.similarity_computed);
  EXPECT_EQ(o.tlsh, want->tlsh);
  EXPECT_EQ(o.ssdeep, want->ssdeep);
  ASSERT_EQ(o.sdbf.size(), want->sdbf.size());
  for (std::size_t i = 0; i < o.sdbf.size(); ++i) {
    EXPECT_EQ(digest::format_sdbf(o.sdbf[i]), digest::format_sdbf(want->sdbf[i]));
  }
  EXPECT_EQ(stats.similarity_skipped, 1u);
  EXPECT_EQ(stats.files, 2u);
}

TEST(HashLayer, BufferedBytesStayWithinTheBudget) {
  std::vector<FakeEntry> entries;
  for (int i = 0; i < 40; ++i) entries.push_back(file(std::string("f").append(std::to_string(i)), random_bytes(100000, 100 + i)));
  FakeLayer layer(entries, SIZE_MAX);
  LayerHashOptions options;
  options.threads = 3;
  options.max_inflight_bytes = 250000;  // two files at most
  LayerHashStats stats;
  auto records = hash_layer(layer, options, stats);
  ASSERT_TRUE(records.ok());
  EXPECT_EQ(records->size(), 40u);
  EXPECT_LE(stats.peak_inflight_bytes, 250000u);
  EXPECT_GT(stats.peak_inflight_bytes, 0u);
  for (std::size_t i = 0; i < entries.size(); ++i) {
    EXPECT_EQ((*records)[i].path, entries[i].entry.path);
    EXPECT_EQ((*records)[i].crypto.sha256, sha256_of(entries[i].data));
  }
}

TEST(HashLayer, SieveSkipsSimilarityForKnownFiles) {
  const Bytes known = random_bytes(4000, 21), other = random_bytes(4000, 22);
  std::vector<FakeEntry> entries = {file("known", known), file("other", other),
                                    marker("dir", image::EntryKind::directory)};
  FakeLayer layer(entries, SIZE_MAX);
  LayerHashOptions options;
  const auto known_sha = sha256_of(known);
  options.is_known = [&](const digest::CryptoDigests& d) { return d.sha256 == known_sha; };
  LayerHashStats stats;
  auto records = hash_layer(layer, options, stats);
  ASSERT_TRUE(records.ok());
  ASSERT_EQ(records->size(), 3u);
  EXPECT_FALSE((*records)[0].similarity_computed);
  EXPECT_TRUE((*records)[0].sdbf.empty());
  EXPECT_FALSE((*records)[0].tlsh.has_value());
  EXPECT_TRUE((*records)[1].similarity_computed);
  EXPECT_FALSE((*records)[1].sdbf.empty());
  EXPECT_TRUE((*records)[1].tlsh.has_value());
  EXPECT_EQ((*records)[2].kind, image::EntryKind::directory);
  EXPECT_EQ(stats.similarity_skipped, 1u);
  EXPECT_EQ(stats.files, 2u);
}

}  // namespace
}  // namespace hashsieve::scan
