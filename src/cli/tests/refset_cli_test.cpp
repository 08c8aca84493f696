// End-to-end tests of `hashsieve refset`.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "cli_runner.h"

namespace hashsieve::cli {
namespace {

namespace fs = std::filesystem;
using testing::run_in;

const std::string kFixtures = std::string(HASHSIEVE_TEST_DATA) + "/refset";

class RefsetCli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("hashsieve_refset_cli_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  testing::CommandResult refset(const std::string& args) {
    return run_in(dir_.string(), "\"$HASHSIEVE\" refset --data-dir data " + args);
  }
  std::vector<nlohmann::json> json_lines(const std::string& out) {
    std::vector<nlohmann::json> rows;
    std::istringstream in(out);
    for (std::string line; std::getline(in, line);) rows.push_back(nlohmann::json::parse(line));
    return rows;
  }
  fs::path dir_;
};

TEST_F(RefsetCli, ImportListShowLookupRemove) {
  auto imported = refset("import --name clam --format clamav " + kFixtures + "/clamav/main.hdb");
  ASSERT_EQ(imported.exit_code, 0) << imported.err;
  EXPECT_NE(imported.out.find("clam: version 1"), std::string::npos) << imported.out;
  EXPECT_NE(imported.err.find("warning: line"), std::string::npos) << "malformed rows are reported";

  auto again = refset("import --name clam --format clamav " + kFixtures + "/clamav/main.hdb");
  ASSERT_EQ(again.exit_code, 0);
  EXPECT_NE(again.out.find("unchanged"), std::string::npos);

  auto list = json_lines(refset("list").out);
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0]["name"], "clam");
  EXPECT_EQ(list[0]["class"], "malicious");

  auto show = refset("show clam");
  ASSERT_EQ(show.exit_code, 0);
  EXPECT_EQ(nlohmann::json::parse(show.out)["format"], "clamav");

  auto hit = refset("lookup D0F631CA1DDBA8DB3BCFCB9E057CDC98 ffffffffffffffffffffffffffffffff");
  ASSERT_EQ(hit.exit_code, 0) << hit.err;
  auto hits = json_lines(hit.out);
  ASSERT_EQ(hits.size(), 1u);
  EXPECT_EQ(hits[0]["set"], "clam");
  EXPECT_EQ(hits[0]["class"], "malicious");
  EXPECT_EQ(hits[0]["product"], "Win.Trojan.Agent-1");
  EXPECT_EQ(hits[0]["digest_type"], "md5");

  ASSERT_EQ(refset("remove clam").exit_code, 0);
  EXPECT_TRUE(refset("list").out.empty());
  EXPECT_EQ(refset("show clam").exit_code, 1);
}

TEST_F(RefsetCli, FileLookupsHashTheFileFirst) {
  std::ofstream(dir_ / "tool.bin") << "pretend this is a hacking tool\n";
  auto sums = run_in(dir_.string(), "sha256sum tool.bin > bad.sha256");
  ASSERT_EQ(sums.exit_code, 0);
  auto imported = refset("import --name bad --format hashlist --class malicious bad.sha256");
  ASSERT_EQ(imported.exit_code, 0) << imported.err;
  auto hit = refset("lookup --set bad tool.bin");
  ASSERT_EQ(hit.exit_code, 0) << hit.err;
  auto hits = json_lines(hit.out);
  ASSERT_EQ(hits.size(), 1u);
  EXPECT_EQ(hits[0]["digest_type"], "sha256");
  EXPECT_EQ(hits[0]["product"], "tool.bin");
}

TEST_F(RefsetCli, BadInputGivesClearErrorsAndKeepsSets) {
  ASSERT_EQ(refset("import --name vs --format virusshare " + kFixtures + "/virusshare/VirusShare_00000.md5").exit_code, 0);
  struct Case {
    const char* name;
    std::string args;
    int want_exit;
    const char* want_message;
  };
  std::ofstream(dir_ / "empty.db").flush();
  const Case cases[] = {
      {"unknown format", "import --name x --format rds " + kFixtures + "/clamav/main.hdb", 2, "format"},
      {"missing --name", "import --format clamav " + kFixtures + "/clamav/main.hdb", 2, "--name"},
      {"wrong format", "import --name vs --format nsrl-v3 " + kFixtures + "/clamav/main.hdb", 1, "SQLite"},
      {"empty file", "import --name vs --format nsrl-v3 empty.db", 1, "empty"},
      {"hashlist without class", "import --name l --format hashlist " + kFixtures + "/hashlist/SHA256SUMS", 1,
       "--class"},
      {"bad set name", "import --name ../x --format clamav " + kFixtures + "/clamav/main.hdb", 1, "set name"},
      {"bad query", "lookup nothex", 1, "neither a file"},
      {"unknown set", "lookup --set nope 00000000000000000000000000000000", 1, "no reference set"},
      {"unknown subcommand", "frobnicate", 2, "unknown subcommand"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    auto r = refset(c.args);
    EXPECT_EQ(r.exit_code, c.want_exit) << r.err;
    EXPECT_NE(r.err.find(c.want_message), std::string::npos) << r.err;
  }
  auto list = json_lines(refset("list").out);
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0]["name"], "vs");
  EXPECT_EQ(list[0]["version"], 1);
}

}  // namespace
}  // namespace hashsieve::cli

namespace hashsieve::cli {
namespace {

TEST_F(RefsetCli, SdbfSetsAnswerSimilarityLookups) {
  const std::string sdhash = std::string(HASHSIEVE_TEST_DATA) + "/sdhash";
  auto imported = refset("import --name sim --format sdbf " + sdhash + "/expected/all.sdbf");
  ASSERT_EQ(imported.exit_code, 0) << imported.err;
  auto show = nlohmann::json::parse(refset("show sim").out);
  EXPECT_EQ(show["sdbf_digests"], 12);
  EXPECT_EQ(show["class"], "malicious");
  // ls.elf itself scores 100 against its own reference and 99 against dir.elf
  // (the scores sdhash 3.4 gives, see tests/data/sdhash/expected/compare.txt).
  auto hit = refset("lookup --min-score 90 " + sdhash + "/inputs/ls.elf");
  ASSERT_EQ(hit.exit_code, 0) << hit.err;
  auto hits = json_lines(hit.out);
  ASSERT_EQ(hits.size(), 2u) << hit.out;
  EXPECT_EQ(hits[0]["reference"], "ls.elf");
  EXPECT_EQ(hits[0]["score"], 100);
  EXPECT_EQ(hits[1]["reference"], "dir.elf");
  EXPECT_EQ(hits[1]["score"], 99);
  EXPECT_EQ(hits[1]["algorithm"], "sdbf");

  // Broken digest lines are warnings; a file that is no digest file is an error.
  std::string good = testing::read_text(sdhash + "/expected/cat.elf.sdbf");
  std::ofstream(dir_ / "mixed.sdbf") << good << "sdbf:03:garbage\n" << good;
  auto mixed = refset("import --name mixed --format sdbf mixed.sdbf");
  ASSERT_EQ(mixed.exit_code, 0) << mixed.err;
  EXPECT_NE(mixed.err.find("warning: line 2"), std::string::npos) << mixed.err;
  auto wrong = refset("import --name wrong --format sdbf " + kFixtures + "/clamav/main.hdb");
  EXPECT_EQ(wrong.exit_code, 1);
  EXPECT_NE(wrong.err.find("SDBF"), std::string::npos) << wrong.err;
}

}  // namespace
}  // namespace hashsieve::cli

namespace hashsieve::cli {
namespace {

TEST_F(RefsetCli, BuildFromTreesAndDebPackages) {
  const std::string inputs = std::string(HASHSIEVE_TEST_DATA) + "/sdhash/inputs";
  // A root filesystem with two binaries, and a .deb that installs a third.
  fs::create_directories(dir_ / "root/usr/bin");
  fs::copy_file(inputs + "/ls.elf", dir_ / "root/usr/bin/ls");
  fs::copy_file(inputs + "/cat.elf", dir_ / "root/usr/bin/cat");
  fs::create_directories(dir_ / "pkg/DEBIAN");
  fs::create_directories(dir_ / "pkg/usr/bin");
  fs::copy_file(inputs + "/gpgv.elf", dir_ / "pkg/usr/bin/gpgv");
  std::ofstream(dir_ / "pkg/DEBIAN/control") << "Package: gpgv-test\nVersion: 1.0-1\nArchitecture: amd64\n"
                                                "Maintainer: t <t@example.invalid>\nDescription: test\n";
  auto deb = run_in(dir_.string(), "dpkg-deb --root-owner-group -Zxz --build pkg gpgv-test.deb >/dev/null");
  ASSERT_EQ(deb.exit_code, 0) << deb.err;

  auto built = refset("build --name distro --class known --threads 2 root gpgv-test.deb");
  ASSERT_EQ(built.exit_code, 0) << built.err;
  EXPECT_NE(built.out.find("3 rows"), std::string::npos) << built.out;

  // Exact hits name the path and, for packages, the package.
  auto ls = json_lines(refset("lookup --set distro " + inputs + "/ls.elf").out);
  ASSERT_GE(ls.size(), 3u);  // md5, sha1, sha256 (+ similarity)
  EXPECT_EQ(ls[0]["product"], "/usr/bin/ls");
  EXPECT_EQ(ls[0]["class"], "known");
  auto gpgv = json_lines(refset("lookup --set distro --min-score 100 " + inputs + "/gpgv.elf").out);
  ASSERT_FALSE(gpgv.empty());
  EXPECT_EQ(gpgv[0]["product"], "/usr/bin/gpgv");
  EXPECT_EQ(gpgv[0]["version"], "gpgv-test_1.0-1_amd64");
  EXPECT_EQ(gpgv.back()["reference"], "gpgv-test_1.0-1_amd64:/usr/bin/gpgv");

  // dir is not in the set, but it is nearly ls: similarity hits, no exact one.
  // The TLSH distance is the one Debian's tlsh tool computes.
  auto dir = json_lines(refset("lookup --set distro --min-score 50 --max-tlsh 50 " + inputs + "/dir.elf").out);
  ASSERT_EQ(dir.size(), 2u);
  EXPECT_EQ(dir[0]["algorithm"], "sdbf");
  EXPECT_EQ(dir[0]["reference"], "/usr/bin/ls");
  EXPECT_EQ(dir[0]["score"], 99);
  EXPECT_EQ(dir[1]["algorithm"], "tlsh");
  EXPECT_EQ(dir[1]["reference"], "/usr/bin/ls");
  const std::string debian = run_in(inputs, "tlsh -c ls.elf -f dir.elf | cut -f1").out;
  EXPECT_EQ(dir[1]["distance"], std::stoi(debian)) << debian;

  // The same inputs again: unchanged.
  EXPECT_NE(refset("build --name distro --class known root gpgv-test.deb").out.find("unchanged"), std::string::npos);

  // A broken package fails cleanly and leaves the set as it was.
  std::ofstream(dir_ / "broken.deb") << "!<arch>\ngarbage";
  auto broken = refset("build --name distro --class known root broken.deb");
  EXPECT_EQ(broken.exit_code, 1);
  EXPECT_NE(broken.err.find("broken.deb"), std::string::npos) << broken.err;
  auto truncated = run_in(dir_.string(), "head -c 2000 gpgv-test.deb > cut.deb");
  ASSERT_EQ(truncated.exit_code, 0);
  EXPECT_EQ(refset("build --name distro --class known cut.deb").exit_code, 1);
  auto list = json_lines(refset("list").out);
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0]["version"], 1);
  EXPECT_EQ(refset("build --name x --class known missing-dir").exit_code, 1);
  EXPECT_EQ(refset("build --name x missing-class").exit_code, 2);
}

// Built sets answer from their similarity index (the default thresholds are
// the indexed ones), ssdeep hits come with --min-ssdeep, and a corrupt index
// is an error naming the file.
TEST_F(RefsetCli, BuiltSetsUseTheSimilarityIndexAndSsdeep) {
  const std::string inputs = std::string(HASHSIEVE_TEST_DATA) + "/sdhash/inputs";
  fs::create_directories(dir_ / "root/usr/bin");
  fs::copy_file(inputs + "/ls.elf", dir_ / "root/usr/bin/ls");
  fs::copy_file(inputs + "/cat.elf", dir_ / "root/usr/bin/cat");
  ASSERT_EQ(refset("build --name distro --class known root").exit_code, 0);
  ASSERT_TRUE(fs::exists(dir_ / "data/refsets/distro/current/similarity.idx"));

  auto plain = json_lines(refset("lookup --set distro " + inputs + "/dir.elf").out);
  ASSERT_EQ(plain.size(), 2u);  // SDBF 99 and TLSH against ls, at the default thresholds
  EXPECT_EQ(plain[0]["algorithm"], "sdbf");
  EXPECT_EQ(plain[1]["algorithm"], "tlsh");
  auto with_ssdeep = json_lines(refset("lookup --set distro --min-ssdeep 1 " + inputs + "/dir.elf").out);
  ASSERT_EQ(with_ssdeep.size(), 3u);
  EXPECT_EQ(with_ssdeep[2]["algorithm"], "ssdeep");
  EXPECT_EQ(with_ssdeep[2]["reference"], "/usr/bin/ls");
  EXPECT_GT(with_ssdeep[2]["score"].get<int>(), 0);
  EXPECT_EQ(refset("lookup --set distro --min-ssdeep 101 " + inputs + "/dir.elf").exit_code, 2);

  // Truncate the index: loading the set fails and names the file.
  fs::resize_file(dir_ / "data/refsets/distro/current/similarity.idx", 100);
  auto broken = refset("lookup --set distro " + inputs + "/dir.elf");
  EXPECT_EQ(broken.exit_code, 1);
  EXPECT_NE(broken.err.find("similarity.idx"), std::string::npos) << broken.err;
}

}  // namespace
}  // namespace hashsieve::cli
