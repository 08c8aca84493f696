#include "hashsieve/scan/facts.h"

#include <gtest/gtest.h>

#include "hashsieve/digest/file_digests.h"
#include "hashsieve/refset/similarity_index.h"
#include "hashsieve/scan/matcher.h"
#include "scan_fixture.h"

namespace hashsieve::scan {
namespace {

using namespace testing;

FileRecord hashed_record() {
  const Bytes data = random_bytes(9000, 31);
  auto d = digest::compute_digests("usr/lib/x.so", data, digest::DigestSelection{});
  EXPECT_TRUE(d.ok());
  FileRecord r;
  r.path = "usr/lib/x.so";
  r.size = data.size();
  r.mode = 0755;
  r.crypto = d->crypto;
  r.sdbf = d->sdbf;
  r.tlsh = d->tlsh;
  r.ssdeep = d->ssdeep;
  r.content_keys = refset::sample_content_keys(data);
  r.similarity_computed = true;
  return r;
}

TEST(Facts, RoundTrip) {
  const FileRecord r = hashed_record();
  auto back = decode_facts(encode_facts(r));
  ASSERT_TRUE(back.ok()) << back.error().message();
  EXPECT_EQ(back->path, r.path);
  EXPECT_EQ(back->crypto, r.crypto);
  EXPECT_EQ(back->sdbf, r.sdbf);
  EXPECT_EQ(back->tlsh, r.tlsh);
  EXPECT_EQ(back->ssdeep, r.ssdeep);
  EXPECT_FALSE(r.content_keys.empty());
  EXPECT_EQ(back->content_keys, r.content_keys);
  EXPECT_TRUE(back->similarity_computed);
  FileRecord link;
  link.path = "bin/sh";
  link.kind = image::EntryKind::symlink;
  link.link_target = "dash";
  auto l = decode_facts(encode_facts(link));
  ASSERT_TRUE(l.ok());
  EXPECT_EQ(l->kind, image::EntryKind::symlink);
  EXPECT_EQ(l->link_target, "dash");
}

TEST(Facts, BadFieldsAreParseErrorsNamingTheField) {
  struct Case {
    std::string name;
    void (*mutate)(store::FileFacts&);
    std::string want;
  };
  const std::vector<Case> cases = {
      {"md5", [](store::FileFacts& f) { f.md5 = "xyz"; }, "md5"},
      {"sha1 short", [](store::FileFacts& f) { f.sha1 = "abcd"; }, "sha1"},
      {"sha256 missing", [](store::FileFacts& f) { f.sha256.clear(); }, "without every crypto digest"},
      {"crc32", [](store::FileFacts& f) { f.crc32 = "1234567890"; }, "crc32"},
      {"sdbf", [](store::FileFacts& f) { f.sdbf = "sdbf:03:garbage\n"; }, "sdbf"},
      {"tlsh", [](store::FileFacts& f) { f.tlsh = "T1XYZ"; }, "tlsh"},
      {"ssdeep", [](store::FileFacts& f) { f.ssdeep = "no colons"; }, "ssdeep"},
      {"content keys length", [](store::FileFacts& f) { f.content_keys = "0000001"; }, "content_keys"},
      {"content keys hex", [](store::FileFacts& f) { f.content_keys = "0000001G"; }, "content_keys"},
      {"content keys order", [](store::FileFacts& f) { f.content_keys = "0000000200000001"; }, "content_keys"},
  };
  const store::FileFacts good = encode_facts(hashed_record());
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    store::FileFacts f = good;
    c.mutate(f);
    auto r = decode_facts(f);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code(), ErrorCode::parse_error);
    EXPECT_NE(r.error().message().find(c.want), std::string::npos) << r.error().message();
    EXPECT_NE(r.error().message().find("usr/lib/x.so"), std::string::npos);
  }
}

TEST(Facts, HasherVersionsNameEveryHasher) {
  const std::string v = hasher_versions();
  for (const char* part : {"crypto/", "sdbf/", "tlsh/", "ssdeep/", "facts/"}) {
    EXPECT_NE(v.find(part), std::string::npos) << part;
  }
}

// A matcher that reports fixed evidence, to test classification alone.
class FixedMatcher final : public Matcher {
 public:
  FixedMatcher(MatchStage stage, std::vector<Evidence> evidence) : stage_(stage), evidence_(std::move(evidence)) {}
  MatchStage stage() const override { return stage_; }
  Status match(const FileRecord&, std::vector<Evidence>& out) const override {
    ++calls;
    out.insert(out.end(), evidence_.begin(), evidence_.end());
    return {};
  }
  mutable int calls = 0;

 private:
  MatchStage stage_;
  std::vector<Evidence> evidence_;
};

Evidence ev(Verdict v, std::string algorithm) {
  Evidence e;
  e.verdict = v;
  e.algorithm = std::move(algorithm);
  return e;
}

TEST(Classify, PrecedenceAndTheSieve) {
  struct Case {
    std::string name;
    std::vector<Evidence> exact, path, similarity;
    Verdict want;
    bool similarity_runs;
  };
  const std::vector<Case> cases = {
      {"nothing", {}, {}, {}, Verdict::unknown, true},
      {"known", {ev(Verdict::known, "sha256")}, {}, {ev(Verdict::suspicious, "sdbf")}, Verdict::known, false},
      {"known in a suspicious category", {ev(Verdict::suspicious, "sha1")}, {}, {}, Verdict::suspicious, false},
      {"known and malicious", {ev(Verdict::known, "sha256"), ev(Verdict::malicious, "md5")}, {}, {},
       Verdict::malicious, false},
      {"known bytes at another path", {ev(Verdict::known, "sha256")}, {ev(Verdict::modified, "path")}, {},
       Verdict::modified, false},
      {"modified and similar to bad", {}, {ev(Verdict::modified, "path")}, {ev(Verdict::suspicious, "tlsh")},
       Verdict::suspicious, true},
      {"similar only", {}, {}, {ev(Verdict::suspicious, "sdbf")}, Verdict::suspicious, true},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    std::vector<std::unique_ptr<Matcher>> matchers;
    // Registered out of stage order: classify orders them.
    auto sim = std::make_unique<FixedMatcher>(MatchStage::similarity, c.similarity);
    const FixedMatcher* sim_ptr = sim.get();
    matchers.push_back(std::move(sim));
    matchers.push_back(std::make_unique<FixedMatcher>(MatchStage::path, c.path));
    matchers.push_back(std::make_unique<FixedMatcher>(MatchStage::exact, c.exact));
    auto got = classify(FileRecord{}, matchers);
    ASSERT_TRUE(got.ok());
    EXPECT_EQ(got->verdict, c.want);
    EXPECT_EQ(sim_ptr->calls, c.similarity_runs ? 1 : 0);
  }
}

TEST(Verdict, ParsesItsNames) {
  for (Verdict v : kAllVerdicts) {
    auto p = parse_verdict(to_string(v));
    ASSERT_TRUE(p.ok());
    EXPECT_EQ(*p, v);
  }
  EXPECT_FALSE(parse_verdict("bad").ok());
}

}  // namespace
}  // namespace hashsieve::scan
