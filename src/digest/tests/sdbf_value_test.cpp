#include <gtest/gtest.h>

#include "hashsieve/digest/sdbf.h"

namespace hashsieve::digest {
namespace {

TEST(SdbfValue, StreamDigestReportsCountsAndWeights) {
  std::vector<std::uint64_t> words(2 * kSdbfFilterWords, 0);
  words[0] = 0xFF;                      // 8 bits in filter 0
  words[kSdbfFilterWords + 3] = 0x3;    // 2 bits in filter 1
  Sdbf d = Sdbf::from_stream("f", 1000, words, 42);
  EXPECT_EQ(d.kind(), SdbfKind::stream);
  ASSERT_EQ(d.filter_count(), 2u);
  EXPECT_EQ(d.element_count(0), 160u);
  EXPECT_EQ(d.element_count(1), 42u);
  EXPECT_EQ(d.weight(0), 8u);
  EXPECT_EQ(d.weight(1), 2u);
  EXPECT_EQ(d.max_elements(), 160u);
  EXPECT_EQ(d.filter_bytes(0)[0], 0xFF);
}

TEST(SdbfValue, BlockDigestKeepsPerBlockCounts) {
  std::vector<std::uint64_t> words(3 * kSdbfFilterWords, 0);
  Sdbf d = Sdbf::from_blocks("b", 40000, 16384, words, {192, 7, 0});
  EXPECT_EQ(d.kind(), SdbfKind::block);
  EXPECT_EQ(d.block_size(), 16384u);
  EXPECT_EQ(d.element_count(1), 7u);
  EXPECT_EQ(d.last_count(), 0u);
  EXPECT_EQ(d.max_elements(), 192u);
}

}  // namespace
}  // namespace hashsieve::digest
