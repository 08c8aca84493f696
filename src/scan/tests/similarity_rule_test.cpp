// The similarity rule of the scan: the size gate (sizes_within_ratio) and the
// SimilarityMatcher applying it with the score thresholds against sets built
// by refset build (whose hits carry the reference's size).
#include <gtest/gtest.h>

#include <limits>

#include "hashsieve/refset/catalog.h"
#include "hashsieve/scan/matcher.h"
#include "hashsieve/scan/verdict.h"
#include "scan_fixture.h"

namespace hashsieve::scan {
namespace {

using namespace testing;

TEST(SizeGate, Table) {
  constexpr std::uint64_t kMax = std::numeric_limits<std::uint64_t>::max();
  struct Case {
    std::string name;
    std::uint64_t a, b;
    std::uint32_t ratio;
    bool want;
  };
  const std::vector<Case> cases = {
      {"equal", 1000, 1000, 2, true},
      {"exactly twice", 1000, 2000, 2, true},
      {"just over twice", 1000, 2001, 2, false},
      {"order does not matter", 2001, 1000, 2, false},
      {"ratio 4 admits 4x", 1000, 4000, 4, true},
      {"ratio 4 rejects 4x+1", 1000, 4001, 4, false},
      {"ratio 1 only equal", 1000, 1001, 1, false},
      {"gate off", 1, 1000000, 0, true},
      {"zero and zero", 0, 0, 2, true},
      {"zero and one", 0, 1, 2, false},
      {"no overflow near max", kMax / 2 + 1, kMax, 2, true},
      {"no overflow, far apart", 1, kMax, 2, false},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    EXPECT_EQ(sizes_within_ratio(c.a, c.b, c.ratio), c.want);
  }
}

TEST(SizeGate, DefaultsAreTheCalibratedWholeFileRule) {
  // docs/detection.md: max/min size <= 2 AND (sdbf >= 3 OR tlsh <= 40 OR ssdeep >= 36)
  const ScanThresholds t;
  EXPECT_EQ(t.max_size_ratio, 2u);
  EXPECT_EQ(t.sdbf_min_score, 3);
  EXPECT_EQ(t.tlsh_max_distance, 40);
  EXPECT_EQ(t.ssdeep_min_score, 36);
}

FileRecord record_of(const Bytes& data) {
  auto q = refset::make_similarity_query("query", data);
  EXPECT_TRUE(q.ok());
  FileRecord r;
  r.path = "opt/query";
  r.size = data.size();
  r.sdbf = q->sdbf;
  r.tlsh = q->tlsh;
  r.ssdeep = q->ssdeep;
  r.content_keys = q->content_keys;
  r.similarity_computed = true;
  return r;
}

// Against the "tools" set (suspicious; holds `hack`, 64 KiB): the size gate
// and each algorithm's threshold decide, any algorithm suffices (OR).
TEST(SimilarityRule, SizeGateAndThresholds) {
  TempDir dir;
  const Contents c;
  build_sets(dir.path(), c);
  const auto sets = load_sets(dir.path(), {"distro", "tools"});
  ASSERT_EQ(sets.size(), 2u);
  std::vector<const refset::LoadedRefset*> ptrs;
  for (const auto& s : sets) ptrs.push_back(&s);

  Bytes tripled = c.hack;  // the same content three times: 3x the size
  for (int i = 0; i < 2; ++i) tripled.insert(tripled.end(), c.hack.begin(), c.hack.end());
  Bytes halved(c.hack.begin(), c.hack.begin() + static_cast<std::ptrdiff_t>(c.hack.size() / 2));

  const ScanThresholds defaults;
  ScanThresholds only_tlsh = defaults;  // SDBF and ssdeep can never hit
  only_tlsh.sdbf_min_score = 101;
  only_tlsh.ssdeep_min_score = 101;
  ScanThresholds only_sdbf = defaults;
  only_sdbf.tlsh_max_distance = -1;
  only_sdbf.ssdeep_min_score = 101;
  ScanThresholds no_gate = defaults;
  no_gate.max_size_ratio = 0;
  ScanThresholds none = only_sdbf;
  none.sdbf_min_score = 101;

  struct Case {
    std::string name;
    Bytes data;
    ScanThresholds t;
    bool want_suspicious;
    std::string want_algorithm;  // one evidence of this algorithm, "" for none
  };
  const std::vector<Case> cases = {
      {"edited copy, defaults", c.hack_edit, defaults, true, "sdbf"},
      {"edited copy, TLSH alone", c.hack_edit, only_tlsh, true, "tlsh"},
      {"edited copy, SDBF alone", c.hack_edit, only_sdbf, true, "sdbf"},
      {"edited copy, every threshold out of reach", c.hack_edit, none, false, ""},
      {"half the bytes: within 2x", halved, only_sdbf, true, "sdbf"},
      {"three times the size: gated out", tripled, defaults, false, ""},
      {"three times the size, gate off", tripled, no_gate, true, "sdbf"},
      {"unrelated bytes", c.random, defaults, false, ""},
      {"known set content is never evidence", c.ls, no_gate, false, ""},
  };
  for (const Case& k : cases) {
    SCOPED_TRACE(k.name);
    const auto matcher = make_similarity_matcher(ptrs, k.t);
    std::vector<Evidence> out;
    ASSERT_TRUE(matcher->match(record_of(k.data), out).ok());
    EXPECT_EQ(!out.empty(), k.want_suspicious);
    for (const Evidence& e : out) {
      EXPECT_EQ(e.verdict, Verdict::suspicious);
      EXPECT_EQ(e.set, "tools");
      ASSERT_TRUE(e.score && e.threshold);
      if (e.algorithm == "tlsh") {
        EXPECT_LE(*e.score, *e.threshold);
      } else {
        EXPECT_GE(*e.score, *e.threshold);
      }
    }
    if (!k.want_algorithm.empty()) {
      bool found = false;
      for (const Evidence& e : out) found |= e.algorithm == k.want_algorithm;
      EXPECT_TRUE(found);
    }
  }
}

}  // namespace
}  // namespace hashsieve::scan
