// End-to-end tests of `hashsieve hash`: one JSON object per input, every
// digest agreeing with an independent tool run on the same file.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include <filesystem>
#include <sstream>

#include "cli_runner.h"

namespace hashsieve::cli {
namespace {

namespace fs = std::filesystem;
using testing::read_text;
using testing::run_in;

const std::string kInputs = std::string(HASHSIEVE_TEST_DATA) + "/sdhash/inputs";
const std::string kExpected = std::string(HASHSIEVE_TEST_DATA) + "/sdhash/expected";

std::string first_word(const std::string& s) { return s.substr(0, s.find_first_of(" \t")); }

std::vector<nlohmann::json> parse_lines(const std::string& out) {
  std::vector<nlohmann::json> rows;
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);) rows.push_back(nlohmann::json::parse(line));
  return rows;
}

TEST(HashCli, PrintsEveryDigestAgreeingWithIndependentTools) {
  auto r = run_in(kInputs, "\"$HASHSIEVE\" hash -p 2 ls.elf tiny_511.bin cat.elf");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto rows = parse_lines(r.out);
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0]["path"], "ls.elf");
  EXPECT_EQ(rows[1]["path"], "tiny_511.bin");
  EXPECT_EQ(rows[2]["path"], "cat.elf");
  for (const auto& row : rows) {
    const std::string path = row["path"];
    SCOPED_TRACE(path);
    EXPECT_EQ(row["size"], fs::file_size(kInputs + "/" + path));
    for (const char* tool : {"md5sum", "sha1sum", "sha256sum"}) {
      const std::string key = std::string(tool).substr(0, std::string(tool).size() - 3);
      EXPECT_EQ(row[key], first_word(run_in(kInputs, std::string(tool) + " " + path).out)) << tool;
    }
    // cksum -a crc is POSIX CRC, not zlib's; gzip's trailer holds zlib's CRC32.
    auto crc = run_in(kInputs, "gzip -c " + path + " | tail -c 8 | head -c 4 | od -An -tx4 | tr -d ' \\n'");
    std::string want = crc.out;
    for (auto& ch : want) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    EXPECT_EQ(row["crc32"], want);
    auto ssdeep = run_in(kInputs, "ssdeep -s -b " + path + " | tail -n 1");
    EXPECT_EQ(row["ssdeep"], ssdeep.out.substr(0, ssdeep.out.find(','))) << ssdeep.out;
  }
  // SDBF lines are the reference's, without the newline.
  std::string ls_sdbf = read_text(kExpected + "/ls.elf.sdbf");
  ls_sdbf.pop_back();
  EXPECT_EQ(rows[0]["sdbf"], nlohmann::json::array({ls_sdbf}));
  EXPECT_EQ(rows[1]["sdbf"], nlohmann::json::array());  // < 512 bytes
  auto tlsh = run_in(kInputs, "tlsh -f ls.elf");
  EXPECT_EQ(rows[0]["tlsh"], "T1" + tlsh.out.substr(0, 70));
  EXPECT_TRUE(rows[1]["tlsh"].is_string() || rows[1]["tlsh"].is_null());
}

TEST(HashCli, BadInputsAreReportedAndTheRestHashed) {
  auto r = run_in(kInputs, "\"$HASHSIEVE\" hash missing.bin cat.elf");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("missing.bin"), std::string::npos);
  EXPECT_EQ(parse_lines(r.out).size(), 1u);
  auto usage = run_in(kInputs, "\"$HASHSIEVE\" hash");
  EXPECT_EQ(usage.exit_code, 2);
  auto dir = run_in(kInputs, "\"$HASHSIEVE\" hash .");
  EXPECT_EQ(dir.exit_code, 1);
  EXPECT_NE(dir.err.find("use -r"), std::string::npos);
}

}  // namespace
}  // namespace hashsieve::cli
