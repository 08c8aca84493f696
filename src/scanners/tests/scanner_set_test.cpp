#include "hashsieve/scanners/scanner_set.h"

#include <gtest/gtest.h>

#include "scanner_test_util.h"

namespace hashsieve::scanners {
namespace {

using testing::TempDir;
using testing::bytes_of;

TEST(ScannerSetTest, EmptyConfigOpensNothing) {
  auto set = open_scanners({});
  ASSERT_TRUE(set.ok()) << set.error().message();
  EXPECT_TRUE(set->scanners.empty());
  EXPECT_TRUE(set->pointers().empty());
}

TEST(ScannerSetTest, OpensClamavThenYaraAndTheyScan) {
  TempDir dir;
  dir.write("db/test.hdb", testing::hdb_line(testing::eicar(), "Hashsieve.Test.Eicar"));
  dir.write("rules/r.yar", "rule marker { strings: $a = \"HASHSIEVE-MARKER\" condition: $a }\n");
  ScannerConfig config;
  config.clamav_dbs = {dir.file("db")};
  config.yara_rules = dir.file("rules");
  auto set = open_scanners(config);
  ASSERT_TRUE(set.ok()) << set.error().message();
  ASSERT_EQ(set->pointers().size(), 2u);
  EXPECT_EQ(set->pointers()[0]->name(), "clamav");
  EXPECT_EQ(set->pointers()[1]->name(), "yara");
  auto clam = set->pointers()[0]->scan_buffer(bytes_of(testing::eicar()), "eicar");
  ASSERT_TRUE(clam.ok()) << clam.error().message();
  ASSERT_EQ(clam->size(), 1u);
  EXPECT_EQ((*clam)[0].signature, testing::unofficial("Hashsieve.Test.Eicar"));
  auto yara = set->pointers()[1]->scan_buffer(bytes_of("xx HASHSIEVE-MARKER xx"), "marked");
  ASSERT_TRUE(yara.ok()) << yara.error().message();
  ASSERT_EQ(yara->size(), 1u);
  EXPECT_EQ((*yara)[0].signature, "marker");
}

struct BadConfigCase {
  const char* name;
  ScannerConfig config;
  ErrorCode code;
  const char* message_part;
};

TEST(ScannerSetTest, BadConfigsNameTheScanner) {
  const std::vector<BadConfigCase> cases = {
      {"both ClamAV paths", {{"/nonexistent/db"}, "/nonexistent/clamd.sock", "", {}}, ErrorCode::invalid_argument,
       "pick one ClamAV path"},
      {"missing ClamAV database", {{"/nonexistent/db"}, "", "", {}}, ErrorCode::not_found, "ClamAV"},
      {"missing clamd socket", {{}, "/nonexistent/clamd.sock", "", {}}, ErrorCode::unavailable, "clamd"},
      {"missing YARA rules", {{}, "", "/nonexistent/rules", {}}, ErrorCode::not_found, "YARA"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    auto set = open_scanners(c.config);
    ASSERT_FALSE(set.ok());
    EXPECT_EQ(set.error().code(), c.code) << set.error().message();
    EXPECT_NE(set.error().message().find(c.message_part), std::string::npos) << set.error().message();
  }
}

}  // namespace
}  // namespace hashsieve::scanners
