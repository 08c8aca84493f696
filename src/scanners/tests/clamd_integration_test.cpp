// The clamd client against a real clamd that each suite starts with a
// configuration and a database written here (no official databases, no
// network). Skips when clamd is not installed.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <clamav.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <thread>

#include "hashsieve/scanners/clamav.h"
#include "scanner_test_util.h"

extern char** environ;

namespace hashsieve::scanners {
namespace {

using testing::TempDir;
using testing::bytes_of;
using testing::eicar;

std::string find_clamd() {
  for (const char* p : {"/usr/sbin/clamd", "/usr/bin/clamd", "/usr/local/sbin/clamd"}) {
    if (::access(p, X_OK) == 0) return p;
  }
  return {};
}

constexpr std::uint64_t kStreamMaxLength = 1 << 20;

// A clamd process of our own: LocalSocket only, our database, foreground.
class Clamd {
 public:
  Clamd() {
    binary_ = find_clamd();
    if (binary_.empty()) return;
    dir_.write("db/eicar.hdb", testing::hdb_line(eicar(), "Hashsieve.Test.EicarHash"));
    dir_.write("db/eicar.ndb", testing::ndb_line(eicar().substr(0, 40), "Hashsieve.Test.EicarBody"));
    socket_ = dir_.file("clamd.sock");
    config_ = dir_.write("clamd.conf",
                         "Foreground yes\n"
                         "LocalSocket " + socket_ + "\n"
                         "DatabaseDirectory " + dir_.file("db") + "\n"
                         "TemporaryDirectory " + dir_.path().string() + "\n"
                         "LogFile " + dir_.file("clamd.log") + "\n"
                         "PidFile " + dir_.file("clamd.pid") + "\n"
                         "StreamMaxLength " + std::to_string(kStreamMaxLength) + "\n"
                         "MaxThreads 4\n");
    const char* argv[] = {binary_.c_str(), "-c", config_.c_str(), nullptr};
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    // clamd logs to its LogFile; keep its console echo out of the test output.
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
    if (::posix_spawn(&pid_, binary_.c_str(), &actions, nullptr, const_cast<char**>(argv), environ) != 0) pid_ = -1;
    posix_spawn_file_actions_destroy(&actions);
  }
  ~Clamd() { kill(SIGTERM); }

  bool installed() const { return !binary_.empty(); }
  const std::string& socket() const { return socket_; }
  std::string log() const {
    std::ifstream in(dir_.file("clamd.log"));
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  }

  // Polls VERSION until clamd has loaded its database.
  Result<std::unique_ptr<ExternalScanner>> connect(ScanLimits limits = {}) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(90);
    for (;;) {
      auto r = connect_clamd({socket_, limits, std::size_t{1} << 16});
      if (r.ok() || std::chrono::steady_clock::now() > until || !alive()) return r;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }

  bool alive() {
    if (pid_ <= 0) return false;
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return false;
    }
    return true;
  }

  void kill(int sig) {
    if (pid_ <= 0) return;
    ::kill(pid_, sig);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
  }

 private:
  TempDir dir_;
  std::string binary_;
  std::string socket_;
  std::string config_;
  pid_t pid_ = -1;
};

class ClamdIntegration : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { clamd_ = new Clamd(); }
  static void TearDownTestSuite() {
    delete clamd_;
    clamd_ = nullptr;
  }
  void SetUp() override {
    if (!clamd_->installed()) GTEST_SKIP() << "clamd is not installed (Debian package clamav-daemon)";
  }
  static Clamd* clamd_;
};
Clamd* ClamdIntegration::clamd_ = nullptr;

TEST_F(ClamdIntegration, VersionMatchesTheLibrary) {
  auto scanner = clamd_->connect();
  ASSERT_TRUE(scanner.ok()) << scanner.error().message() << "\n" << clamd_->log();
  EXPECT_EQ((*scanner)->name(), "clamd");
  // The same Debian build provides clamd and libclamav.
  EXPECT_EQ((*scanner)->version(), std::string(cl_retver()));
  // Only official databases carry a version clamd reports; ours is custom.
  EXPECT_EQ((*scanner)->signature_version(), "unknown (clamd reports no database version)");
}

TEST_F(ClamdIntegration, FindsEicarThroughTheGeneratedDatabase) {
  auto scanner = clamd_->connect();
  ASSERT_TRUE(scanner.ok()) << scanner.error().message() << "\n" << clamd_->log();
  struct Case {
    std::string name;
    std::string input;
    std::vector<std::string> any_of;  // clamd reports the first match only
  };
  const std::string hash = testing::unofficial("Hashsieve.Test.EicarHash");
  const std::string body = testing::unofficial("Hashsieve.Test.EicarBody");
  const std::vector<Case> cases = {
      {"eicar", eicar(), {hash, body}},
      {"eicar deep inside a large stream", std::string(300000, 'a') + eicar(), {body}},
      {"clean", "nothing here", {}},
      {"empty", "", {}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    auto r = (*scanner)->scan_buffer(bytes_of(c.input), c.name);
    ASSERT_TRUE(r.ok()) << r.error().message();
    if (c.any_of.empty()) {
      EXPECT_TRUE(r->empty());
    } else {
      ASSERT_EQ(r->size(), 1u);
      EXPECT_EQ(r->front().scanner, "clamd");
      EXPECT_NE(std::find(c.any_of.begin(), c.any_of.end(), r->front().signature), c.any_of.end())
          << r->front().signature;
    }
  }
  TempDir files;
  auto f = (*scanner)->scan_file(files.write("eicar.com", eicar()));
  ASSERT_TRUE(f.ok()) << f.error().message();
  EXPECT_EQ(f->size(), 1u);
}

TEST_F(ClamdIntegration, StreamMaxLengthOfTheDaemonIsALimitError) {
  ScanLimits limits;
  limits.max_bytes = 4 * kStreamMaxLength;  // ours is larger than clamd's
  auto scanner = clamd_->connect(limits);
  ASSERT_TRUE(scanner.ok()) << scanner.error().message() << "\n" << clamd_->log();
  const std::string big(2 * kStreamMaxLength, 'z');
  auto r = (*scanner)->scan_buffer(bytes_of(big), "big.bin");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::limit_exceeded) << r.error().message();
  EXPECT_NE(r.error().message().find("big.bin"), std::string::npos) << r.error().message();
}

TEST_F(ClamdIntegration, ParallelScans) {
  auto scanner = clamd_->connect();
  ASSERT_TRUE(scanner.ok()) << scanner.error().message() << "\n" << clamd_->log();
  std::vector<int> bad(3, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 20; ++i) {
        const bool infected = (i + t) % 2 == 0;
        auto r = (*scanner)->scan_buffer(bytes_of(infected ? eicar() : std::string("clean")), "p");
        if (!r.ok() || r->size() != (infected ? 1u : 0u)) ++bad[t];
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(bad, std::vector<int>(3, 0));
}

// A daemon that goes away: the next scan is a clear unavailable error.
TEST(ClamdIntegrationLifecycle, DaemonGoneIsUnavailable) {
  if (find_clamd().empty()) GTEST_SKIP() << "clamd is not installed (Debian package clamav-daemon)";
  Clamd clamd;
  auto scanner = clamd.connect();
  ASSERT_TRUE(scanner.ok()) << scanner.error().message() << "\n" << clamd.log();
  ASSERT_TRUE((*scanner)->scan_buffer(bytes_of(eicar()), "before").ok());
  clamd.kill(SIGKILL);
  auto r = (*scanner)->scan_buffer(bytes_of(eicar()), "after");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::unavailable) << r.error().message();
  EXPECT_NE(r.error().message().find(clamd.socket()), std::string::npos) << r.error().message();
}

}  // namespace
}  // namespace hashsieve::scanners
