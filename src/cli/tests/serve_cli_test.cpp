// `hashsieve serve`: bad arguments and configurations exit 2 with a message
// naming the problem; a running service stops on SIGTERM with exit status 0.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "cli_runner.h"

namespace hashsieve::cli {
namespace {

using testing::run_in;

TEST(ServeCliTest, BadArgumentsAndConfigurations) {
  const auto dir = std::filesystem::temp_directory_path() / ("hashsieve_serve_cli_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "unknown.yaml") << "data_dir: d\nwebhook: {token: x}\napi: {tokens: [t]}\nlisten: {prot: 1}\n";
  std::ofstream(dir / "noapi.yaml") << "data_dir: d\nwebhook: {token: x}\n";
  struct Case {
    std::string name;
    std::string command;
    int want_exit;
    std::string want_err;
  };
  const std::vector<Case> cases = {
      {"unknown argument", "$HASHSIEVE serve --bogus", 2, "unknown argument '--bogus'"},
      {"missing file", "$HASHSIEVE serve --config nope.yaml", 2, "nope.yaml"},
      {"unknown key", "$HASHSIEVE serve --config unknown.yaml", 2, "unknown key 'listen.prot'"},
      {"no api token", "$HASHSIEVE serve --config noapi.yaml", 2, "api.tokens"},
      {"bad env value", "HASHSIEVE_LISTEN_PORT=abc $HASHSIEVE serve --config noapi.yaml", 2, "HASHSIEVE_LISTEN_PORT"},
      {"runtime over TCP", "HASHSIEVE_RUNTIME_DOCKER_HOST=tcp://h:2375 $HASHSIEVE serve --config noapi.yaml", 2,
       "HASHSIEVE_RUNTIME_DOCKER_HOST"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const auto r = run_in(dir.string(), c.command);
    EXPECT_EQ(r.exit_code, c.want_exit) << r.err;
    EXPECT_NE(r.err.find(c.want_err), std::string::npos) << r.err;
  }
  std::filesystem::remove_all(dir);
}

// A scanner of the scanners: section that cannot be opened stops serve (and
// a worker with scanners.image_scans) at start-up, naming the scanner and
// the path; a bad combination of scanner options is a configuration error.
TEST(ServeCliTest, ScannerMisconfigurationStopsAtStartup) {
  const auto dir = std::filesystem::temp_directory_path() / ("hashsieve_serve_scanners_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string env = "HASHSIEVE_DATA_DIR=data HASHSIEVE_WEBHOOK_TOKEN=x HASHSIEVE_API_TOKENS=t "
                          "HASHSIEVE_LISTEN_PORT=0 HASHSIEVE_CRAWLER_ENABLED=false HASHSIEVE_WORKERS_COUNT=1 ";
  struct Case {
    std::string name;
    std::string command;
    int want_exit;
    std::vector<std::string> want_err;
  };
  const std::vector<Case> cases = {
      {"serve: missing YARA rules directory",
       env + "HASHSIEVE_SCANNERS_YARA_RULES=$PWD/no-rules $HASHSIEVE serve", 1,
       {"hashsieve serve: ", "YARA", (dir / "no-rules").string()}},
      {"serve: clamd not running", env + "HASHSIEVE_SCANNERS_CLAMD_SOCKET=$PWD/no-clamd.sock $HASHSIEVE serve", 1,
       {"clamd", (dir / "no-clamd.sock").string()}},
      {"serve: both ClamAV paths",
       env + "HASHSIEVE_SCANNERS_CLAMAV_DB=$PWD/db HASHSIEVE_SCANNERS_CLAMD_SOCKET=$PWD/c.sock $HASHSIEVE serve", 2,
       {"pick one ClamAV path"}},
      {"serve: image scans without a scanner", env + "HASHSIEVE_SCANNERS_IMAGE_SCANS=true $HASHSIEVE serve", 2,
       {"scanners.image_scans"}},
      {"worker: missing YARA rules directory with image scans",
       env + "HASHSIEVE_SCANNERS_YARA_RULES=$PWD/no-rules HASHSIEVE_SCANNERS_IMAGE_SCANS=true $HASHSIEVE worker", 1,
       {"hashsieve worker: ", "YARA", (dir / "no-rules").string()}},
      {"worker: both ClamAV paths",
       env + "HASHSIEVE_SCANNERS_CLAMAV_DB=$PWD/db HASHSIEVE_SCANNERS_CLAMD_SOCKET=$PWD/c.sock $HASHSIEVE worker", 2,
       {"pick one ClamAV path"}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const auto r = run_in(dir.string(), c.command);
    EXPECT_EQ(r.exit_code, c.want_exit) << r.err;
    for (const auto& w : c.want_err) EXPECT_NE(r.err.find(w), std::string::npos) << r.err;
    // serve stopped before creating anything.
    if (c.command.ends_with("serve")) {
      EXPECT_FALSE(std::filesystem::exists(dir / "data")) << r.err;
    }
  }
  std::filesystem::remove_all(dir);
}

TEST(ServeCliTest, StopsGracefullyOnSigterm) {
  const auto dir = std::filesystem::temp_directory_path() / ("hashsieve_serve_sig_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  // Configured from the environment alone, on any free port; SIGTERM after
  // /healthz answers (or after 10 s), then the exit status of serve.
  const auto r = run_in(dir.string(),
                        // Braces: run_in chains with &&, and `&` would background the whole chain.
                        "{ HASHSIEVE_DATA_DIR=data HASHSIEVE_WEBHOOK_TOKEN=x HASHSIEVE_API_TOKENS=t "
                        "HASHSIEVE_LISTEN_PORT=0 HASHSIEVE_CRAWLER_ENABLED=false $HASHSIEVE serve 2>serve.err & pid=$!; "
                        "for i in $(seq 100); do grep -q listening serve.err 2>/dev/null && break; sleep 0.1; done; "
                        "kill -TERM $pid; wait $pid; echo exit=$?; cat serve.err >&2; }");
  EXPECT_NE(r.out.find("exit=0"), std::string::npos) << r.out << r.err;
  EXPECT_NE(r.err.find("SIGTERM received, shutting down"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("stopped:"), std::string::npos) << r.err;
  std::filesystem::remove_all(dir);
}

TEST(ServeCliTest, RuntimeWithoutAnEngineStillServesAndStops) {
  const auto dir = std::filesystem::temp_directory_path() / ("hashsieve_serve_rt_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  // runtime.enabled against a socket that does not exist: serve starts,
  // logs the engine error (and retries), and still stops on SIGTERM.
  const auto r = run_in(dir.string(),
                        "{ HASHSIEVE_DATA_DIR=data HASHSIEVE_WEBHOOK_TOKEN=x HASHSIEVE_API_TOKENS=t "
                        "HASHSIEVE_LISTEN_PORT=0 HASHSIEVE_CRAWLER_ENABLED=false HASHSIEVE_WORKERS_COUNT=0 "
                        "HASHSIEVE_RUNTIME_ENABLED=true HASHSIEVE_RUNTIME_DOCKER_HOST=unix://$PWD/none.sock "
                        "$HASHSIEVE serve 2>serve.err & pid=$!; "
                        "for i in $(seq 100); do grep -q 'runtime:' serve.err 2>/dev/null && "
                        "grep -q listening serve.err && break; sleep 0.1; done; "
                        "kill -TERM $pid; wait $pid; echo exit=$?; cat serve.err >&2; }");
  EXPECT_NE(r.out.find("exit=0"), std::string::npos) << r.out << r.err;
  EXPECT_NE(r.err.find("none.sock"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("retrying"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("stopped"), std::string::npos) << r.err;
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace hashsieve::cli
