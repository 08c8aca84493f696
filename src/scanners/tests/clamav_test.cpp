#include "hashsieve/scanners/clamav.h"

#include <clamav.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <thread>

#include "scanner_test_util.h"

namespace hashsieve::scanners {
namespace {

using testing::TempDir;
using testing::bytes_of;
using testing::eicar;
using testing::unofficial;

// One database directory: EICAR by hash (.hdb) and by body (.ndb).
class ClamavTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_.write("db/eicar.hdb", testing::hdb_line(eicar(), "Hashsieve.Test.EicarHash"));
    dir_.write("db/eicar.ndb", testing::ndb_line(eicar().substr(0, 40), "Hashsieve.Test.EicarBody"));
  }
  Result<std::unique_ptr<ExternalScanner>> open(ScanLimits limits = {}) {
    return open_clamav({{dir_.file("db")}, limits, ""});
  }
  TempDir dir_;
};

std::vector<std::string> names(const std::vector<ScanFinding>& findings) {
  std::vector<std::string> out;
  for (const auto& f : findings) {
    EXPECT_EQ(f.scanner, "clamav");
    out.push_back(f.signature);
  }
  std::sort(out.begin(), out.end());
  return out;
}

TEST_F(ClamavTest, FindsWhatTheGeneratedDatabasesDescribe) {
  auto scanner = open();
  ASSERT_TRUE(scanner.ok()) << scanner.error().message();
  struct Case {
    std::string name;
    std::string input;
    std::vector<std::string> want;
  };
  const std::string hash = unofficial("Hashsieve.Test.EicarHash");
  const std::string body = unofficial("Hashsieve.Test.EicarBody");
  const std::vector<Case> cases = {
      {"eicar itself: hash and body", eicar(), {body, hash}},
      {"eicar inside other bytes: body only", std::string(1000, 'a') + eicar() + "tail", {body}},
      {"clean text", "hello world, nothing to see here\n", {}},
      {"empty", "", {}},
      {"eicar minus its last byte: body only", eicar().substr(0, 67), {body}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    auto r = (*scanner)->scan_buffer(bytes_of(c.input), c.name);
    ASSERT_TRUE(r.ok()) << r.error().message();
    EXPECT_EQ(names(*r), c.want);
  }
}

TEST_F(ClamavTest, ScansFilesAndRefusesWhatIsNotARegularFile) {
  auto scanner = open();
  ASSERT_TRUE(scanner.ok()) << scanner.error().message();
  const std::string eicar_path = dir_.write("files/eicar.com", eicar());
  auto found = (*scanner)->scan_file(eicar_path);
  ASSERT_TRUE(found.ok()) << found.error().message();
  EXPECT_EQ(names(*found).size(), 2u);
  auto empty = (*scanner)->scan_file(dir_.write("files/empty", ""));
  ASSERT_TRUE(empty.ok()) << empty.error().message();
  EXPECT_TRUE(empty->empty());

  const std::string fifo = dir_.file("files/fifo");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  struct Case {
    std::string name;
    std::string path;
    ErrorCode want;
  };
  const std::vector<Case> cases = {
      {"fifo", fifo, ErrorCode::unsupported},
      {"character device", "/dev/null", ErrorCode::unsupported},
      {"directory", dir_.file("files"), ErrorCode::invalid_argument},
      {"missing", dir_.file("files/nope"), ErrorCode::not_found},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    auto r = (*scanner)->scan_file(c.path);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code(), c.want);
    EXPECT_NE(r.error().message().find(c.path), std::string::npos) << r.error().message();
  }
}

TEST_F(ClamavTest, InputsOverTheSizeLimitAreRefusedNotSkipped) {
  ScanLimits limits;
  limits.max_bytes = 67;
  auto scanner = open(limits);
  ASSERT_TRUE(scanner.ok()) << scanner.error().message();
  auto r = (*scanner)->scan_buffer(bytes_of(eicar()), "big.bin");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::limit_exceeded);
  EXPECT_EQ(r.error().message(), "big.bin: 68 bytes is over the scan limit of 67 bytes");
  auto f = (*scanner)->scan_file(dir_.write("big.bin", eicar()));
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.error().code(), ErrorCode::limit_exceeded);
  // At the limit exactly, the file is scanned.
  auto at = (*scanner)->scan_buffer(bytes_of(eicar().substr(0, 67)), "at-limit");
  ASSERT_TRUE(at.ok()) << at.error().message();
  EXPECT_EQ(at->size(), 1u);
}

// libclamav's internal limits (here: archive recursion, default 17) must not
// turn into a silent "clean": they come back as a Heuristics finding.
TEST_F(ClamavTest, EngineLimitsAreReportedNotSkipped) {
  auto scanner = open();
  ASSERT_TRUE(scanner.ok()) << scanner.error().message();
  auto r = (*scanner)->scan_file(std::string(HASHSIEVE_TEST_DATA) + "/scanners/nested20.zip");
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(names(*r), std::vector<std::string>{"Heuristics.Limits.Exceeded.MaxRecursion"});
}

TEST_F(ClamavTest, VersionsDescribeEngineAndDatabase) {
  auto scanner = open();
  ASSERT_TRUE(scanner.ok()) << scanner.error().message();
  EXPECT_EQ((*scanner)->name(), "clamav");
  EXPECT_EQ((*scanner)->version(), std::string(cl_retver()));
  const std::string before = (*scanner)->signature_version();
  EXPECT_EQ(before.rfind("2 signatures, db 0, sha256:", 0), 0u) << before;

  // Another signature changes the signature version; the same files do not.
  auto again = open();
  ASSERT_TRUE(again.ok());
  EXPECT_EQ((*again)->signature_version(), before);
  dir_.write("db/more.hdb", testing::hdb_line("other", "Hashsieve.Test.Other"));
  auto more = open();
  ASSERT_TRUE(more.ok()) << more.error().message();
  EXPECT_EQ((*more)->signature_version().rfind("3 signatures, db 0, sha256:", 0), 0u);
  EXPECT_NE((*more)->signature_version().substr(25), before.substr(25));
}

TEST_F(ClamavTest, BadDatabasesAreClearErrors) {
  struct Case {
    std::string name;
    std::vector<std::string> paths;
    ErrorCode want;
    std::string want_part;
  };
  const std::string bad = dir_.write("bad/broken.hdb", "this is not a hash line\n");
  const std::string bad2 = dir_.write("bad2/broken.hdb", testing::hdb_line("x", "Ok.Sig") + "zz:1:Bad.Sig\n");
  const std::string empty_dir = (dir_.path() / "empty").string();
  std::filesystem::create_directories(empty_dir);
  const std::vector<Case> cases = {
      {"no paths", {}, ErrorCode::invalid_argument, "no database path"},
      {"missing", {dir_.file("nope.hdb")}, ErrorCode::not_found, "nope.hdb"},
      // libclamav's own log lines are part of the message, with the line.
      {"malformed hdb", {bad}, ErrorCode::parse_error, "broken.hdb: Malformed database (cli_loadhash: Problem parsing database at line 1"},
      {"bad hash on line 2", {bad2}, ErrorCode::parse_error, "Malformed hash string at line 2"},
      {"directory without databases", {empty_dir}, ErrorCode::io_error, "No supported database files"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    auto r = open_clamav({c.paths, {}, ""});
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code(), c.want) << r.error().message();
    EXPECT_NE(r.error().message().find(c.want_part), std::string::npos) << r.error().message();
  }
}

TEST_F(ClamavTest, TemporaryDirectory) {
  std::filesystem::create_directories(dir_.file("scratch"));
  auto scanner = open_clamav({{dir_.file("db")}, {}, dir_.file("scratch")});
  ASSERT_TRUE(scanner.ok()) << scanner.error().message();
  auto r = (*scanner)->scan_buffer(bytes_of(eicar()), "e");
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(r->size(), 2u);
  // libclamav removes its per-scan directories again.
  EXPECT_TRUE(std::filesystem::is_empty(dir_.file("scratch")));

  auto missing = open_clamav({{dir_.file("db")}, {}, dir_.file("no-such-dir")});
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code(), ErrorCode::invalid_argument);
  EXPECT_NE(missing.error().message().find("no-such-dir"), std::string::npos);
}

TEST_F(ClamavTest, OneEngineServesManyThreads) {
  auto scanner = open();
  ASSERT_TRUE(scanner.ok()) << scanner.error().message();
  const ExternalScanner& s = **scanner;
  std::vector<std::thread> threads;
  std::vector<int> bad(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) {
        const bool infected = (i + t) % 2 == 0;
        const std::string input = infected ? eicar() : "clean " + std::to_string(i);
        auto r = s.scan_buffer(bytes_of(input), "t");
        if (!r.ok() || r->size() != (infected ? 2u : 0u)) ++bad[t];
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(bad, std::vector<int>(4, 0));
}

}  // namespace
}  // namespace hashsieve::scanners
