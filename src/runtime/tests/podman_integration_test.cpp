// hashsieve runtime against Podman's Docker-compatible service, which this
// test starts (`podman system service --time=0` on a private socket, root
// only; skipped without podman or a static busybox, or when Podman cannot
// run containers here). Podman gets its own storage (vfs), run and temp
// directories, cgroupfs and a file events backend, so nothing is shared
// with the host's Podman. Images are made with `podman import`.
//
// Differences from dockerd this covers: an exec is the event "exec" (not
// "exec_start"), the path stat of a regular file carries a linkTarget, and
// containers need explicit lower rlimits where raising them is not allowed.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "engine_harness.h"
#include "hashsieve/refset/builder.h"
#include "hashsieve/runtime/drift.h"
#include "hashsieve/runtime/engine.h"
#include "hashsieve/runtime/runner.h"
#include "hashsieve/store/container_store.h"
#include "scan_fixture.h"

namespace hashsieve::runtime {
namespace {

namespace fs = std::filesystem;
using scan::Verdict;
using testing::find_program;
using testing::run;
using testing::start_container;
using testing::TestRootfs;
using testing::build_bad_set;
using testing::write_test_rootfs;
using testing::write_file;

class Podman : public ::testing::Environment {
 public:
  static inline std::string skip_reason;
  static inline std::string dir, socket, podman;
  static inline pid_t pid = -1;
  static inline std::string tool_bin;  // the reference "bad" binary in the image
  static inline std::string app_bin;   // an image binary containers modify

  void SetUp() override {
    if (::geteuid() != 0) {
      skip_reason = "needs root to start podman's service with private storage";
      return;
    }
    podman = find_program("podman");
    if (podman.empty()) {
      skip_reason = "podman is not installed";
      return;
    }
    if (!fs::exists("/bin/busybox")) {
      skip_reason = "no /bin/busybox (busybox-static)";
      return;
    }
    std::string tmpl = (fs::temp_directory_path() / "hspod-XXXXXX").string();
    dir = ::mkdtemp(tmpl.data());
    socket = dir + "/podman.sock";
    const fs::path root = fs::path(dir) / "rootfs";
    const TestRootfs files = write_test_rootfs(root, {"sh", "cp", "sleep", "dd", "printf", "echo", "cat"}, false);
    tool_bin = files.tool_bin;
    app_bin = files.app_bin;
    auto [rc, out] = run("tar -C " + root.string() + " -cf " + dir + "/rootfs.tar . && " + cli() + " import " + dir +
                         "/rootfs.tar hsbox:it");
    if (rc != 0) {
      skip_reason = "podman import failed: " + out;
      return;
    }
    // Can Podman run a container here at all (runc, cgroups, rlimits)?
    auto probe = run(cli() + " run --rm " + kRunFlags + " hsbox:it /bin/echo ok");
    if (probe.first != 0) {
      skip_reason = "podman cannot run containers here: " + probe.second;
      return;
    }
    start_service();
  }

  void TearDown() override {
    if (!dir.empty() && !podman.empty()) run(cli() + " rm -f -t 0 -a >/dev/null");
    if (pid > 0) {
      ::kill(pid, SIGTERM);
      ::waitpid(pid, nullptr, 0);
    }
    if (!dir.empty()) {
      run("umount -R " + dir + "/root 2>/dev/null; umount -R " + dir + "/run 2>/dev/null");
      std::error_code ec;
      fs::remove_all(dir, ec);
    }
  }

  // Podman raises RLIMIT_NOFILE and RLIMIT_NPROC of a root container by
  // default; where that is not permitted (no CAP_SYS_RESOURCE, as in some
  // CI sandboxes) lower ones must be given.
  static constexpr const char* kRunFlags = "--network none --ulimit nofile=1024:1024 --ulimit nproc=1024:1024";

  static std::string global_flags() {
    return " --root " + dir + "/root --runroot " + dir + "/run --tmpdir " + dir +
           "/tmp --storage-driver vfs --cgroup-manager cgroupfs --events-backend file";
  }
  static std::string cli() { return podman + global_flags(); }

  static void start_service() {
    pid = ::fork();
    if (pid == 0) {
      const int log = ::open((dir + "/service.log").c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      ::dup2(log, 1);
      ::dup2(log, 2);
      const std::string cmd = "exec " + cli() + " system service --time=0 unix://" + socket;
      ::execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    for (int i = 0; i < 300; ++i) {
      if (connect_docker_engine({"unix://" + socket}).ok()) return;
      if (::waitpid(pid, nullptr, WNOHANG) == pid) {
        pid = -1;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    skip_reason = "podman's service did not come up in 30 s (see " + dir + "/service.log)";
  }
};

class RuntimePodmanTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!Podman::skip_reason.empty()) GTEST_SKIP() << "podman unavailable: " << Podman::skip_reason;
    data_ = tmp_.path();
    sets_ = build_bad_set(data_, {{"tool.bin", Podman::tool_bin}});
    auto engine = connect_docker_engine({"unix://" + Podman::socket});
    ASSERT_TRUE(engine.ok()) << engine.error().message();
    engine_ = std::move(engine).value();
  }
  void TearDown() override {
    if (Podman::skip_reason.empty()) run(Podman::cli() + " rm -f -t 0 -a >/dev/null");
  }

  // Starts a container running `script` then sleeping; waits until the script is done.
  std::string start(const std::string& name, const std::string& script) {
    return start_container(Podman::cli(), Podman::kRunFlags, name, script);
  }

  scan::testing::TempDir tmp_;
  std::string data_;
  std::vector<refset::LoadedRefset> sets_;
  std::unique_ptr<Engine> engine_;
};

TEST_F(RuntimePodmanTest, OnceSweepGivesVerdicts) {
  start("bad", "cp /opt/samples/tool.bin /tmp/dropper");
  start("modifier", "printf XXXX | dd of=/opt/app bs=1 seek=100 conv=notrunc");
  start("benign", "echo hello > /tmp/hello.txt");
  const std::string bin = std::string(HASHSIEVE_BINARY_DIR) + "/hashsieve";
  auto [rc, out] = run(bin + " runtime --once --docker-host unix://" + Podman::socket + " --data-dir " + data_ +
                       " --format json --output " + data_ + "/report.json");
  EXPECT_EQ(rc, 0) << out;
  std::ifstream in(data_ + "/report.json");
  auto j = nlohmann::json::parse(in, nullptr, false);
  ASSERT_FALSE(j.is_discarded());
  struct Case {
    std::string name;
    std::string verdict;
    std::string path;  // a drifted file that must be reported
    std::string file_verdict;
  };
  const Case cases[] = {{"bad", "malicious", "/tmp/dropper", "malicious"},
                        {"modifier", "modified", "/opt/app", "modified"},
                        {"benign", "unknown", "/tmp/hello.txt", "unknown"}};
  ASSERT_EQ(j["containers"].size(), std::size(cases)) << j.dump();
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const nlohmann::json* got = nullptr;
    for (const auto& container : j["containers"]) {
      if (container["name"] == c.name) got = &container;
    }
    ASSERT_NE(got, nullptr);
    EXPECT_EQ((*got)["verdict"], c.verdict);
    EXPECT_TRUE((*got)["errors"].empty()) << (*got)["errors"].dump();
    const nlohmann::json* f = nullptr;
    for (const auto& file : (*got)["files"]) {
      if (file["path"] == c.path) f = &file;
    }
    ASSERT_NE(f, nullptr) << (*got)["files"].dump();
    EXPECT_EQ((*f)["verdict"], c.file_verdict);
  }

  // --full through Podman's /export: the image's files too.
  auto full = run(bin + " runtime --once --full --docker-host unix://" + Podman::socket + " --data-dir " + data_ +
                  " --format json --output " + data_ + "/full.json");
  EXPECT_EQ(full.first, 0) << full.second;
  std::ifstream full_in(data_ + "/full.json");
  auto fj = nlohmann::json::parse(full_in, nullptr, false);
  ASSERT_FALSE(fj.is_discarded());
  for (const auto& container : fj["containers"]) {
    SCOPED_TRACE(container["name"].get<std::string>());
    EXPECT_EQ(container["summary"]["full_scan"], true);
    bool busybox = false, tool = false;
    for (const auto& f : container["files"]) {
      busybox = busybox || f["path"] == "/bin/busybox";
      // The image's copy of the bad tool is found in every container.
      tool = tool || (f["path"] == "/opt/samples/tool.bin" && f["verdict"] == "malicious");
    }
    EXPECT_TRUE(busybox);
    EXPECT_TRUE(tool);
    EXPECT_EQ(container["verdict"], "malicious");
  }
}

TEST_F(RuntimePodmanTest, StartAndExecEventsTriggerScans) {
  auto results = store::open_sqlite_container_store(data_);
  ASSERT_TRUE(results.ok());
  SystemClock clock;
  SchedulerOptions o;
  o.min_interval = std::chrono::seconds(1);
  Scheduler scheduler(o, clock, 2);
  DriftScanner drift(sets_, nullptr, {}, DriftOptions{});
  RunnerOptions ro;
  ro.event_retry = std::chrono::milliseconds(200);
  Runner runner(*engine_, drift, scheduler, clock, results->get(), nullptr, ro);
  std::atomic<bool> stop{false};
  std::thread loop([&] { runner.run(stop); });
  auto wait_for = [&](const std::string& id, const std::string& verdict) {
    for (int i = 0; i < 150; ++i) {
      auto r = (*results)->get_container_result(id);
      if (r.ok() && r->has_value() && (*r)->verdict == verdict) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  };
  const std::string id = start("late", "echo hi > /tmp/hi");
  EXPECT_TRUE(wait_for(id, "unknown"));  // the start event
  // Podman's exec event ("exec"): the runner's list interval (60 s) is far
  // away. The event comes as the exec starts, so the scan it triggers may
  // run before the copy is written: a second exec comes after it.
  run(Podman::cli() + " exec late cp /opt/samples/tool.bin /tmp/dropper");
  run(Podman::cli() + " exec late cat /tmp/dropper");
  EXPECT_TRUE(wait_for(id, "malicious"));
  stop = true;
  runner.notify();
  loop.join();
}

// One service for the whole suite.
[[maybe_unused]] ::testing::Environment* const kPodman = ::testing::AddGlobalTestEnvironment(new Podman);

}  // namespace
}  // namespace hashsieve::runtime
