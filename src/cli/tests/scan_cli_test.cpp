// End-to-end tests of `hashsieve scan` on dir: and docker-archive: inputs,
// with reference sets made by `hashsieve refset build`.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <random>

#include "cli_runner.h"
#include "hashsieve/store/store.h"

namespace hashsieve::cli {
namespace {

namespace fs = std::filesystem;
using testing::run_in;

std::string random_text(std::size_t n, unsigned seed) {
  std::mt19937 gen(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(gen() >> 24);
  return s;
}

void write(const fs::path& p, const std::string& content) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << content;
}

class ScanCli : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "hashsieve-scan-cli-XXXXXX").string();
    dir_ = ::mkdtemp(tmpl.data());
    const std::string ls = random_text(20000, 1), evil = random_text(5000, 2), tool = random_text(65536, 3);
    std::string tool_edit = tool;
    for (std::size_t i = 100; i < tool_edit.size(); i += 8192) tool_edit[i] ^= 0x33;
    write(dir_ / "ref/distro/usr/bin/ls", ls);
    write(dir_ / "ref/distro/usr/bin/cat", random_text(30000, 5));
    write(dir_ / "ref/bad/evil", evil);
    write(dir_ / "ref/tools/scanner", tool);
    // The image: layer 0 a base, layer 1 removes the dropper and adds an app.
    write(dir_ / "l0/usr/bin/ls", ls);
    write(dir_ / "l0/tmp/dropper", evil);
    write(dir_ / "l1/tmp/.wh.dropper", "");
    write(dir_ / "l1/opt/app/netscan", tool_edit);
    write(dir_ / "l1/opt/app/data", random_text(9000, 4));
    // The same files as one root filesystem for dir:.
    write(dir_ / "root/usr/bin/ls", ls);
    write(dir_ / "root/usr/bin/cat", random_text(30000, 6));  // not the distribution's cat
    write(dir_ / "root/opt/evil", evil);
    write(dir_ / "root/opt/data", random_text(9000, 4));
    for (auto [name, cls] : {std::pair{"distro", "known"}, std::pair{"bad", "malicious"},
                             std::pair{"tools", "suspicious"}}) {
      auto r = run("refset build --name " + std::string(name) + " --class " + cls + " ref/" + name);
      ASSERT_EQ(r.exit_code, 0) << r.err;
    }
  }
  void TearDown() override { fs::remove_all(dir_); }

  // `args` starts with the command; --data-dir goes right after it (refset
  // takes it before its subcommand).
  testing::CommandResult run(const std::string& args) {
    const auto space = args.find(' ');
    const std::string command = args.substr(0, space);
    const std::string rest = space == std::string::npos ? "" : args.substr(space);
    return run_in(dir_.string(), "\"$HASHSIEVE\" " + command + " --data-dir data" + rest);
  }

  fs::path dir_;
};

std::map<std::string, nlohmann::json> files_by_path(const nlohmann::json& report) {
  std::map<std::string, nlohmann::json> out;
  for (const auto& f : report["files"]) out[f["path"].get<std::string>()] = f;
  return out;
}

TEST_F(ScanCli, DirSourceVerdictsAndExitCodes) {
  auto r = run("scan --format json --all dir:root");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["schema_version"], 1);
  EXPECT_EQ(j["summary"]["verdict"], "malicious");
  auto files = files_by_path(j);
  ASSERT_EQ(files.size(), 4u);
  EXPECT_EQ(files["/usr/bin/cat"]["verdict"], "modified");
  EXPECT_EQ(files["/usr/bin/cat"]["evidence"][0]["algorithm"], "path");
  EXPECT_EQ(files["/usr/bin/ls"]["verdict"], "known");
  EXPECT_EQ(files["/opt/evil"]["verdict"], "malicious");
  EXPECT_EQ(files["/opt/evil"]["evidence"][0]["set"], "bad");
  EXPECT_EQ(files["/opt/data"]["verdict"], "unknown");

  struct Case {
    std::string fail_on;
    int want;
  };
  for (const Case& c : {Case{"malicious", 4}, Case{"suspicious", 4}, Case{"modified", 4}}) {
    SCOPED_TRACE(c.fail_on);
    EXPECT_EQ(run("scan --format json --fail-on " + c.fail_on + " dir:root").exit_code, c.want);
  }
  EXPECT_EQ(run("scan --format json --set distro --fail-on suspicious dir:root").exit_code, 0);
  EXPECT_EQ(run("scan --format json --set distro --fail-on modified dir:root").exit_code, 4);
  EXPECT_EQ(run("scan --format json --set bad --fail-on modified dir:root").exit_code, 4);
  EXPECT_EQ(run("scan --format json --set tools --fail-on modified dir:root").exit_code, 0);
}

TEST_F(ScanCli, DockerArchiveWithWhiteoutAndSimilarity) {
  auto mk = run_in(dir_.string(), "python3 '" + std::string(HASHSIEVE_TEST_DATA) +
                                      "/scan/make_docker_archive.py' img.tar l0 l1");
  ASSERT_EQ(mk.exit_code, 0) << mk.err;
  for (int round = 0; round < 2; ++round) {  // the second round reads the layer cache
    SCOPED_TRACE(round);
    auto r = run("scan --format json docker-archive:img.tar");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    auto j = nlohmann::json::parse(r.out);
    EXPECT_EQ(j["image"]["platform"], "linux/amd64");
    EXPECT_EQ(j["image"]["layers"].size(), 2u);
    auto files = files_by_path(j);
    EXPECT_EQ(files.count("/usr/bin/ls"), 0u);  // known: not listed without --all
    ASSERT_EQ(files.count("/tmp/dropper"), 1u);
    EXPECT_EQ(files["/tmp/dropper"]["verdict"], "malicious");
    EXPECT_EQ(files["/tmp/dropper"]["hidden"], true);
    EXPECT_EQ(files["/tmp/dropper"]["hidden_by"]["index"], 1);
    EXPECT_EQ(files["/opt/app/netscan"]["verdict"], "suspicious");
    EXPECT_EQ(files["/opt/app/data"]["verdict"], "unknown");
    EXPECT_EQ(j["summary"]["files"], 4);
    EXPECT_EQ(j["summary"]["known"], 1);
    EXPECT_DOUBLE_EQ(j["summary"]["reduction_ratio"].get<double>(), 0.25);
  }
  // Every scan is recorded for listing, newest first.
  auto store = store::open_sqlite_store((dir_ / "data").string());
  ASSERT_TRUE(store.ok()) << store.error().message();
  auto scans = (*store)->list_scan_results(10);
  ASSERT_TRUE(scans.ok());
  ASSERT_EQ(scans->size(), 2u);
  EXPECT_EQ((*scans)[0].reference, "docker-archive:img.tar");
  EXPECT_EQ((*scans)[0].verdict, "malicious");
  EXPECT_EQ((*scans)[0].platform, "linux/amd64");
  EXPECT_EQ(nlohmann::json::parse((*scans)[0].summary_json)["files"], 4);

  auto sarif = run("scan --format sarif --output out.sarif docker-archive:img.tar");
  ASSERT_EQ(sarif.exit_code, 0) << sarif.err;
  EXPECT_TRUE(sarif.out.empty());
  auto s = nlohmann::json::parse(testing::read_text(dir_ / "out.sarif"));
  EXPECT_EQ(s["version"], "2.1.0");
  EXPECT_EQ(s["runs"][0]["results"].size(), 2u);  // dropper (malicious), netscan (suspicious)

  auto table = run("scan --format table docker-archive:img.tar");
  ASSERT_EQ(table.exit_code, 0) << table.err;
  EXPECT_NE(table.out.find("verdict   malicious"), std::string::npos);
  EXPECT_NE(table.out.find("/opt/app/netscan"), std::string::npos);
}

TEST_F(ScanCli, BadArgumentsAndInputs) {
  struct Case {
    std::string args;
    int want;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"scan", 2, "needs a REF"},
      {"scan --format xml dir:root", 2, "--format"},
      {"scan --fail-on known dir:root", 2, "--fail-on"},
      {"scan --threads 0 dir:root", 2, "--threads"},
      {"scan --layers-in-flight 0 dir:root", 2, "--layers-in-flight"},
      {"scan --layers-in-flight many dir:root", 2, "--layers-in-flight"},
      {"scan --sdbf-min-score 101 dir:root", 2, "--sdbf-min-score"},
      {"scan --bogus dir:root", 2, "unknown option"},
      {"scan dir:root dir:root", 2, "one REF"},
      {"scan --token t --username u --password p dir:root", 2, "--token"},
      {"scan --set nosuchset dir:root", 1, "nosuchset"},
      {"scan dir:does-not-exist", 1, "does-not-exist"},
      {"scan docker-archive:ref/bad/evil", 1, "evil"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.args);
    auto r = run(c.args);
    EXPECT_EQ(r.exit_code, c.want) << r.err;
    EXPECT_NE(r.err.find(c.message), std::string::npos) << r.err;
    EXPECT_TRUE(r.out.empty());
  }
}

}  // namespace
}  // namespace hashsieve::cli
