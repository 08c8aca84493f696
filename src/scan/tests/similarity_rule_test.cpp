// The similarity rule of the scan: the size gate (sizes_within_ratio) and the
// SimilarityMatcher applying it with the score thresholds against sets built
// by refset build (whose hits carry the reference's size).
#include <gtest/gtest.h>

#include <limits>

#include "hashsieve/core/file.h"
#include "hashsieve/digest/elf_sections.h"
#include "hashsieve/refset/builder.h"
#include "hashsieve/refset/catalog.h"
#include "hashsieve/scan/scanner.h"
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

Bytes read_bytes(const std::string& path) {
  auto f = MappedFile::open(path);
  if (!f.ok()) return {};
  return Bytes(f->bytes().begin(), f->bytes().end());
}

// End to end through the Scanner: a malicious set built from a real program
// (/usr/bin/ls); the image holds "another build" of it (a copy whose code,
// .text, is changed every 97th byte, as a rebuild changes code while its
// strings and tables stay) and unrelated real programs of similar size.
// Default thresholds: the other build is suspicious, the others unknown.
TEST(SimilarityRule, ScanFindsAnotherBuildOfAKnownBadProgram) {
  const Bytes ls = read_bytes("/usr/bin/ls");
  if (ls.empty() || !digest::has_elf_magic(ls)) GTEST_SKIP() << "/usr/bin/ls is not a readable ELF file";
  const std::vector<std::string> text_name = {".text"};
  auto text = digest::find_elf_sections(ls, text_name);
  ASSERT_TRUE(text.ok()) << text.error().message();
  ASSERT_EQ(text->size(), 1u);
  Bytes rebuilt = ls;
  std::size_t changed = 0;
  for (std::uint64_t i = (*text)[0].offset; i < (*text)[0].offset + (*text)[0].size; i += 97, ++changed) {
    rebuilt[i] ^= 0x5a;
  }
  ASSERT_GT(changed, 500u);

  TempDir dir;
  auto catalog = refset::RefsetCatalog::open(dir.path());
  ASSERT_TRUE(catalog.ok()) << catalog.error().message();
  write_file(fs::path(dir.path()) / "sources/bad/ls", ls);
  refset::BuildRequest req;
  req.name = "bad";
  req.set_class = refset::ReferenceClass::malicious;
  req.paths = {dir.path() + "/sources/bad"};
  auto built = refset::build_refset(*catalog, req);
  ASSERT_TRUE(built.ok()) << built.error().message();
  const auto sets = load_sets(dir.path(), {"bad"});
  ASSERT_EQ(sets.size(), 1u);

  // Unrelated programs (coreutils siblings share libraries' code, and still
  // score sdbf <= 1, tlsh >= 67, ssdeep 0 against ls on Debian 12).
  struct Case {
    std::string path;  // in the image
    Bytes data;
    Verdict want;
  };
  std::vector<Case> cases = {{"usr/local/bin/healthcheck", rebuilt, Verdict::suspicious}};
  for (const char* other : {"/usr/bin/cp", "/usr/bin/sort", "/usr/bin/sed"}) {
    Bytes b = read_bytes(other);
    if (!b.empty()) cases.push_back({std::string(other).substr(1), std::move(b), Verdict::unknown});
  }
  FakeSource source;
  std::vector<FakeEntry> layer;
  for (const Case& c : cases) layer.push_back(file(c.path, c.data));
  source.layers.push_back(layer);
  Scanner scanner(nullptr, sets, nullptr, ScanOptions{});
  auto report = scanner.scan(source, source.image());
  ASSERT_TRUE(report.ok()) << report.error().message();
  for (const Case& c : cases) {
    SCOPED_TRACE(c.path);
    const FileFinding* f = nullptr;
    for (const auto& x : report->files) {
      if (x.path == c.path) f = &x;
    }
    ASSERT_NE(f, nullptr);
    EXPECT_EQ(f->verdict, c.want);
    if (c.want == Verdict::suspicious) {
      ASSERT_FALSE(f->evidence.empty());
      for (const Evidence& e : f->evidence) {
        EXPECT_EQ(e.set, "bad");
        EXPECT_EQ(e.set_class, "malicious");
        EXPECT_TRUE(e.score.has_value());
      }
    } else {
      EXPECT_TRUE(f->evidence.empty());
    }
  }
}

}  // namespace
}  // namespace hashsieve::scan
