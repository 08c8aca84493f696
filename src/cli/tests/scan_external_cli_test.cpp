// End-to-end tests of `hashsieve scan` with third-party scanners: a real
// libclamav database (the EICAR test file by MD5) and a real YARA rule on a
// docker-archive image.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <poll.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <thread>

#include "cli_runner.h"
#include "scanner_test_util.h"

namespace hashsieve::cli {
namespace {

namespace fs = std::filesystem;
using testing::run_in;

constexpr std::string_view kRule = R"(rule hashsieve_test_marker : test {
  strings:
    $m = "HASHSIEVE-TEST-MARKER"
  condition:
    $m
}
)";

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

std::map<std::string, nlohmann::json> files_by_path(const nlohmann::json& report) {
  std::map<std::string, nlohmann::json> out;
  for (const auto& f : report["files"]) out[f["path"].get<std::string>()] = f;
  return out;
}

class ScanExternalCli : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "hashsieve-scan-ext-cli-XXXXXX").string();
    dir_ = ::mkdtemp(tmpl.data());
    const std::string ls = random_text(20000, 1);
    write(dir_ / "ref/distro/usr/bin/ls", ls);
    write(dir_ / "l0/usr/bin/ls", ls);                    // known: never scanned
    write(dir_ / "l0/opt/eicar.com", scanners::testing::eicar());  // hidden by layer 1
    write(dir_ / "l1/opt/.wh.eicar.com", "");
    write(dir_ / "l1/opt/app/marked", random_text(3000, 2) + "HASHSIEVE-TEST-MARKER" + random_text(100, 3));
    write(dir_ / "l1/opt/app/data", random_text(9000, 4));
    write(dir_ / "db/test.hdb", scanners::testing::hdb_line(scanners::testing::eicar(), "Hashsieve.Test.Eicar"));
    write(dir_ / "rules/marker.yar", std::string(kRule));
    write(dir_ / "badrules/broken.yar", "rule broken { condition: nonsense_identifier }\n");
    auto r = run("refset build --name distro --class known ref/distro");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    auto mk = run_in(dir_.string(), "python3 '" + std::string(HASHSIEVE_TEST_DATA) +
                                        "/scan/make_docker_archive.py' img.tar l0 l1");
    ASSERT_EQ(mk.exit_code, 0) << mk.err;
  }
  void TearDown() override { fs::remove_all(dir_); }

  testing::CommandResult run(const std::string& args) {
    const auto space = args.find(' ');
    return run_in(dir_.string(), "\"$HASHSIEVE\" " + args.substr(0, space) + " --data-dir data" +
                                     (space == std::string::npos ? "" : args.substr(space)));
  }

  fs::path dir_;
};

TEST_F(ScanExternalCli, ClamavAndYaraFindingsInJsonSarifAndTable) {
  const std::string scanners = " --clamav-db db/test.hdb --yara-rules rules ";
  for (int round = 0; round < 2; ++round) {  // the second round reads the layer cache
    SCOPED_TRACE(round);
    auto r = run("scan --format json" + scanners + "docker-archive:img.tar");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    auto j = nlohmann::json::parse(r.out);
    ASSERT_EQ(j["scanners"].size(), 2u);
    EXPECT_EQ(j["scanners"][0]["name"], "clamav");
    EXPECT_FALSE(j["scanners"][0]["version"].get<std::string>().empty());
    EXPECT_NE(j["scanners"][0]["signature_version"].get<std::string>().find("sha256:"), std::string::npos);
    EXPECT_EQ(j["scanners"][1]["name"], "yara");
    EXPECT_EQ(j["summary"]["verdict"], "malicious");
    auto files = files_by_path(j);
    ASSERT_EQ(files.count("/opt/eicar.com"), 1u);
    EXPECT_EQ(files["/opt/eicar.com"]["verdict"], "malicious");
    EXPECT_EQ(files["/opt/eicar.com"]["hidden"], true);
    EXPECT_EQ(files["/opt/eicar.com"]["evidence"][0]["algorithm"], "clamav");
    EXPECT_EQ(files["/opt/eicar.com"]["evidence"][0]["set"], "clamav");
    EXPECT_EQ(files["/opt/eicar.com"]["evidence"][0]["reference"],
              scanners::testing::unofficial("Hashsieve.Test.Eicar"));
    EXPECT_EQ(files["/opt/app/marked"]["verdict"], "suspicious");
    EXPECT_EQ(files["/opt/app/marked"]["evidence"][0]["algorithm"], "yara");
    EXPECT_EQ(files["/opt/app/marked"]["evidence"][0]["reference"], "hashsieve_test_marker");
    EXPECT_EQ(files["/opt/app/data"]["verdict"], "unknown");
    EXPECT_EQ(files.count("/usr/bin/ls"), 0u);
    EXPECT_EQ(run("scan --format json --fail-on malicious" + scanners + "docker-archive:img.tar").exit_code, 4);
  }
  // Without the scanners the same image is only unknown.
  auto plain = run("scan --format json --fail-on malicious docker-archive:img.tar");
  EXPECT_EQ(plain.exit_code, 0) << plain.err;
  EXPECT_EQ(nlohmann::json::parse(plain.out)["summary"]["verdict"], "unknown");

  auto table = run("scan --format table" + scanners + "docker-archive:img.tar");
  ASSERT_EQ(table.exit_code, 0) << table.err;
  EXPECT_NE(table.out.find("scanner   clamav "), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("scanner   yara "), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("clamav clamav: Hashsieve.Test.Eicar"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("yara yara: hashsieve_test_marker"), std::string::npos) << table.out;

  auto sarif = run("scan --format sarif" + scanners + "docker-archive:img.tar");
  ASSERT_EQ(sarif.exit_code, 0) << sarif.err;
  auto s = nlohmann::json::parse(sarif.out);
  ASSERT_EQ(s["runs"][0]["tool"]["extensions"].size(), 2u);
  EXPECT_EQ(s["runs"][0]["tool"]["extensions"][1]["name"], "yara");
  EXPECT_EQ(s["runs"][0]["results"].size(), 2u);
}

// A clamd that answers VERSION once and then goes away (socket closed and
// removed): the scan must fail, naming clamd and a file, and print no report.
TEST_F(ScanExternalCli, ClamdGoingAwayFailsTheScan) {
  const std::string sock = (dir_ / "clamd.sock").string();
  const int listen_fd = scanners::testing::listen_unix(sock);
  std::thread server([&] {
    // Bounded: a hashsieve that never connects must not hang the test.
    pollfd p{listen_fd, POLLIN, 0};
    const int fd = ::poll(&p, 1, 60'000) == 1 ? ::accept(listen_fd, nullptr, nullptr) : -1;
    if (fd >= 0) {
      std::string cmd;
      char c = 0;
      while (::read(fd, &c, 1) == 1 && c != '\0') cmd += c;
      const std::string reply = cmd == "zVERSION" ? std::string("ClamAV 9.9.9/123/Mon Nov 23 00:00:00 2026") : "";
      (void)!::write(fd, reply.c_str(), reply.size() + 1);
      ::close(fd);
    }
    ::close(listen_fd);
    ::unlink(sock.c_str());
  });
  auto r = run("scan --format json --clamd-socket clamd.sock docker-archive:img.tar");
  server.join();
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("clamd"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("unavailable while scanning /opt/"), std::string::npos) << r.err;
  EXPECT_TRUE(r.out.empty());
}

TEST_F(ScanExternalCli, BadScannerArguments) {
  struct Case {
    std::string args;
    int want;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"scan --clamav-db db/test.hdb --clamd-socket c.sock docker-archive:img.tar", 2, "excludes"},
      {"scan --yara-rules docker-archive:img.tar", 2, "needs a REF"},
      {"scan --yara-rules norules docker-archive:img.tar", 1, "YARA"},
      {"scan --yara-rules norules docker-archive:img.tar", 1, "norules"},
      {"scan --yara-rules badrules docker-archive:img.tar", 1, "broken.yar"},
      {"scan --clamd-socket missing.sock docker-archive:img.tar", 1, "clamd"},
      {"scan --clamd-socket missing.sock docker-archive:img.tar", 1, "missing.sock"},
      {"scan --clamav-db nodb docker-archive:img.tar", 1, "ClamAV"},
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
