#include "hashsieve/scan/file_facts.h"

#include <gtest/gtest.h>

#include "layer_hasher.h"
#include "scan_fixture.h"

namespace hashsieve::scan {
namespace {

using namespace testing;

// A record made from bytes must equal the layer hasher's record for the same
// file, so drifted files classify exactly like image files.
TEST(FileRecordFromBytes, EqualsTheLayerHashersRecord) {
  struct Case {
    std::string name;
    Bytes data;
  };
  const std::vector<Case> cases = {
      {"tiny", {'h', 'i', '\n'}}, {"small", random_bytes(2000, 21)}, {"medium", random_bytes(70000, 22)}};
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    std::vector<FakeEntry> entries = {file("opt/" + c.name, c.data)};
    FakeLayer layer(entries, SIZE_MAX);
    LayerHashStats stats;
    auto want = hash_layer(layer, LayerHashOptions{}, stats);
    ASSERT_TRUE(want.ok()) << want.error().message();
    ASSERT_EQ(want->size(), 1u);
    auto got = file_record_from_bytes("opt/" + c.name, 0644, c.data);
    ASSERT_TRUE(got.ok()) << got.error().message();
    EXPECT_EQ(encode_facts(*got), encode_facts((*want)[0]));
  }
}

TEST(FileRecordFromBytes, ClassifiesAKnownBadFileAsMalicious) {
  TempDir dir;
  Contents c;
  build_sets(dir.path(), c);
  auto sets = load_sets(dir.path(), {"distro", "bad"});
  std::vector<std::unique_ptr<Matcher>> matchers;
  matchers.push_back(make_exact_matcher({&sets[0], &sets[1]}));
  auto evil = file_record_from_bytes("tmp/evil", 0755, c.evil);
  ASSERT_TRUE(evil.ok());
  auto verdict = classify(*evil, matchers);
  ASSERT_TRUE(verdict.ok());
  EXPECT_EQ(verdict->verdict, Verdict::malicious);
  auto other = file_record_from_bytes("tmp/other", 0644, c.random);
  ASSERT_TRUE(other.ok());
  verdict = classify(*other, matchers);
  ASSERT_TRUE(verdict.ok());
  EXPECT_EQ(verdict->verdict, Verdict::unknown);
}

}  // namespace
}  // namespace hashsieve::scan
