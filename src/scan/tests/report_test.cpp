// Golden-file tests of the JSON and SARIF reports, from the deterministic fake
// image of scan_fixture.h. To regenerate after an intended change:
//   HASHSIEVE_UPDATE_GOLDEN=1 build/release/src/scan/hashsieve_scan_test --gtest_filter='Report*'
// then review the diff of tests/data/scan/golden/ and commit it.
#include "hashsieve/scan/report.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <sstream>

#include "scan_fixture.h"

namespace hashsieve::scan {
namespace {

using namespace testing;

const std::string kGolden = std::string(HASHSIEVE_TEST_DATA) + "/scan/golden/";

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void expect_golden(const std::string& name, const std::string& got) {
  const std::string path = kGolden + name;
  if (const char* update = std::getenv("HASHSIEVE_UPDATE_GOLDEN"); update != nullptr && std::string(update) == "1") {
    std::ofstream(path, std::ios::binary) << got;
  }
  const std::string want = read_text(path);
  EXPECT_TRUE(got == want) << name << " differs from the golden file (" << got.size() << " vs " << want.size()
                           << " bytes); got:\n" << got;
}

class ReportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    build_sets(data_.path(), contents_);
    fill_image(source_, contents_);
    paths_ = distro_paths(contents_);
    sets_ = load_sets(data_.path(), {"distro", "bad", "tools"});
    Scanner scanner(nullptr, sets_, &paths_, {});
    auto r = scanner.scan(source_, source_.image());
    ASSERT_TRUE(r.ok()) << r.error().message();
    report_ = std::move(r).value();
  }

  TempDir data_;
  Contents contents_;
  FakeSource source_;
  FakePathIndex paths_;
  std::vector<refset::LoadedRefset> sets_;
  ImageReport report_;
};

TEST_F(ReportTest, JsonMatchesGolden) {
  JsonReportOptions o;
  o.tool_version = "0.0.0-test";
  o.scanned_at = "2026-11-22T00:00:00Z";
  const std::string text = write_json_report({report_}, o);
  expect_golden("report.json", text);
  auto j = nlohmann::json::parse(text);
  EXPECT_EQ(j["schema_version"], 1);
  EXPECT_EQ(j["files"].size(), 7u);  // every file but the known one
  o.all_files = true;
  expect_golden("report-all.json", write_json_report({report_}, o));
}

TEST_F(ReportTest, SarifMatchesGolden) {
  const std::string text = write_sarif_report({report_}, {"0.0.0-test"});
  expect_golden("report.sarif", text);
  auto j = nlohmann::json::parse(text);
  EXPECT_EQ(j["version"], "2.1.0");
  ASSERT_EQ(j["runs"].size(), 1u);
  // malicious x2, suspicious x2, modified x1; unknown and known are not results.
  EXPECT_EQ(j["runs"][0]["results"].size(), 5u);
  for (const auto& res : j["runs"][0]["results"]) {
    const std::string rule = res["ruleId"];
    EXPECT_EQ(j["runs"][0]["tool"]["driver"]["rules"][res["ruleIndex"].get<std::size_t>()]["id"], rule);
  }
}

TEST_F(ReportTest, TableMatchesGolden) { expect_golden("report.txt", write_table_report({report_}, {})); }

TEST_F(ReportTest, SeveralPlatformsMakeAnArrayAndSeveralRuns) {
  ImageReport arm = report_;
  arm.image.platform = {"linux", "arm64", "v8"};
  auto j = nlohmann::json::parse(write_json_report({report_, arm}, {}));
  ASSERT_TRUE(j.is_array());
  EXPECT_EQ(j[1]["image"]["platform"], "linux/arm64/v8");
  auto s = nlohmann::json::parse(write_sarif_report({report_, arm}, {}));
  EXPECT_EQ(s["runs"].size(), 2u);
}

TEST(Report, SarifUrisArePercentEncoded) {
  ImageReport r;
  FileFinding f;
  f.path = "opt/my app/ä#1";
  f.verdict = Verdict::malicious;
  r.files.push_back(f);
  r.summary = summarize(r.files);
  auto j = nlohmann::json::parse(write_sarif_report({r}, {}));
  EXPECT_EQ(j["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
            "opt/my%20app/%C3%A4%231");
}

}  // namespace
}  // namespace hashsieve::scan

namespace hashsieve::scan {
namespace {

TEST_F(ReportTest, EvidenceJsonIsTheReportsEvidenceArray) {
  const auto report = nlohmann::json::parse(write_json_report({report_}, {}));
  std::size_t checked = 0;
  for (const auto& jf : report["files"]) {
    for (const auto& f : report_.files) {
      if ("/" + f.path != jf["path"].get<std::string>()) continue;
      if (f.layer != jf["layer"]["index"].get<std::size_t>()) continue;
      EXPECT_EQ(nlohmann::json::parse(evidence_json(f.evidence)), jf["evidence"]) << f.path;
      ++checked;
    }
  }
  EXPECT_EQ(checked, report["files"].size());
  EXPECT_EQ(evidence_json({}), "[]");
}

}  // namespace
}  // namespace hashsieve::scan
