#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <filesystem>

#include "cli_runner.h"

namespace hashsieve::cli {
namespace {

using testing::run_in;

class RuntimeCli : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (std::filesystem::temp_directory_path() / "hashsieve-rtcli-XXXXXX").string();
    dir_ = ::mkdtemp(tmpl.data());
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string dir_;
};

TEST_F(RuntimeCli, BadArgumentsAndUnreachableEngines) {
  // A socket nobody listens on: the engine is down.
  const std::string dead = dir_ + "/dead.sock";
  const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  ASSERT_LT(dead.size(), sizeof addr.sun_path);
  std::copy(dead.begin(), dead.end(), addr.sun_path);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ::close(fd);  // bound, never listening: connections are refused

  struct Case {
    std::string args;
    int want;
    std::string message;
  };
  const std::string data = " --data-dir " + dir_ + "/data";
  const std::vector<Case> cases = {
      {"runtime --bogus", 2, "unknown argument"},
      {"runtime --docker-host tcp://1.2.3.4:2375", 2, "unix://PATH"},
      {"runtime --docker-host", 2, "needs a value"},
      {"runtime --format xml --once", 2, "--format"},
      {"runtime --fail-on known --once", 2, "--fail-on"},
      {"runtime --interval 0", 2, "--interval"},
      {"runtime --interval 5d", 2, "--interval"},
      {"runtime --jitter 0.9", 2, "--jitter"},
      {"runtime --concurrency 0", 2, "--concurrency"},
      {"runtime --max-file-bytes x", 2, "--max-file-bytes"},
      {"runtime --format json", 2, "go with --once"},
      {"runtime --clamav-db a --clamd-socket b --once", 2, "excludes"},
      {"runtime --once --docker-host unix://" + dir_ + "/missing.sock" + data, 1, "missing.sock: No such file"},
      {"runtime --once --docker-host unix://" + dir_ + data, 1, "not a socket"},
      {"runtime --once --docker-host unix://" + dead + data, 1, "dead.sock"},
      {"runtime --once --full --docker-host unix://" + dead + data, 1, "dead.sock"},
      {"runtime --once --set nosuchset --docker-host unix://" + dead + data, 1, "nosuchset"},
      {"runtime --once --yara-rules " + dir_ + "/norules --docker-host unix://" + dead + data, 1, "YARA"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.args);
    auto r = run_in(dir_, "\"$HASHSIEVE\" " + c.args);
    EXPECT_EQ(r.exit_code, c.want) << r.err;
    EXPECT_NE(r.err.find(c.message), std::string::npos) << r.err;
    EXPECT_TRUE(r.out.empty());
  }
}

}  // namespace
}  // namespace hashsieve::cli
