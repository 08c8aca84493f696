// hashsieve runtime against a real dockerd that this test starts (root only;
// skipped without dockerd, the docker CLI or a static busybox). One dockerd
// serves the whole suite (a gtest Environment): vfs storage, no networking,
// its own data root and socket. Images are made with `docker import` from a
// busybox root filesystem.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "hashsieve/refset/builder.h"
#include "hashsieve/runtime/drift.h"
#include "hashsieve/runtime/engine.h"
#include "hashsieve/runtime/report.h"
#include "hashsieve/runtime/runner.h"
#include "hashsieve/scanners/clamav.h"
#include "hashsieve/store/container_store.h"
#include "engine_harness.h"
#include "scan_fixture.h"

namespace hashsieve::runtime {
namespace {

namespace fs = std::filesystem;
using scan::Verdict;

using testing::eicar;
using testing::find_program;
using testing::run;
using testing::start_container;
using testing::TestRootfs;
using testing::build_bad_set;
using testing::write_test_rootfs;
using testing::write_file;

class Dockerd : public ::testing::Environment {
 public:
  static inline std::string skip_reason;
  static inline std::string dir, socket, docker;
  static inline pid_t pid = -1;
  static inline std::string tool_bin;  // the reference "bad" binary in the image
  static inline std::string app_bin;   // an image binary containers modify

  void SetUp() override {
    if (::geteuid() != 0) {
      skip_reason = "needs root to start dockerd";
      return;
    }
    const std::string dockerd = find_program("dockerd");
    docker = find_program("docker");
    if (dockerd.empty() || docker.empty()) {
      skip_reason = "dockerd or the docker CLI is not installed";
      return;
    }
    if (!fs::exists("/bin/busybox")) {
      skip_reason = "no /bin/busybox (busybox-static)";
      return;
    }
    std::string tmpl = (fs::temp_directory_path() / "hsrt-XXXXXX").string();
    dir = ::mkdtemp(tmpl.data());
    socket = dir + "/docker.sock";
    if (!start()) return;
    // The image: busybox, samples the containers copy, and a binary they modify.
    const fs::path root = fs::path(dir) / "rootfs";
    const TestRootfs files = write_test_rootfs(
        root, {"sh", "cp", "sleep", "dd", "printf", "mkfifo", "mknod", "echo", "cat", "true"}, true);
    tool_bin = files.tool_bin;
    app_bin = files.app_bin;
    auto [rc, out] = run("tar -C " + root.string() + " -cf " + dir + "/rootfs.tar . && " + cli() + " import " + dir +
                         "/rootfs.tar hsbox:it");
    if (rc != 0) skip_reason = "docker import failed: " + out;
  }

  void TearDown() override {
    if (pid > 0) {
      run(cli() + " rm -f $(" + cli() + " ps -aq) >/dev/null");
      stop();
    }
    if (!dir.empty()) {
      run("umount -R " + dir + "/data 2>/dev/null; umount -R " + dir + "/exec 2>/dev/null");
      std::error_code ec;
      fs::remove_all(dir, ec);
    }
  }

  static std::string cli() { return docker + " -H unix://" + socket; }

  static bool start() {
    pid = ::fork();
    if (pid == 0) {
      const int log = ::open((dir + "/dockerd.log").c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      ::dup2(log, 1);
      ::dup2(log, 2);
      const std::string host = "unix://" + socket, data = dir + "/data", exec = dir + "/exec",
                        pidfile = dir + "/dockerd.pid";
      ::execlp("dockerd", "dockerd", "--storage-driver=vfs", "--iptables=false", "--bridge=none", "--data-root",
               data.c_str(), "--host", host.c_str(), "--exec-root", exec.c_str(), "--pidfile", pidfile.c_str(),
               static_cast<char*>(nullptr));
      ::_exit(127);
    }
    for (int i = 0; i < 300; ++i) {
      if (connect_docker_engine({"unix://" + socket}).ok()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    skip_reason = "dockerd did not come up in 30 s (see " + dir + "/dockerd.log)";
    return false;
  }

  static void stop() {
    if (pid <= 0) return;
    ::kill(pid, SIGTERM);
    for (int i = 0; i < 300; ++i) {
      if (::waitpid(pid, nullptr, WNOHANG) == pid) {
        pid = -1;
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    pid = -1;
  }
};

class RuntimeDockerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!Dockerd::skip_reason.empty()) GTEST_SKIP() << "docker unavailable: " << Dockerd::skip_reason;
    data_ = tmp_.path();
    // "bad": the reference bad binary and the EICAR file (malicious).
    sets_ = build_bad_set(data_, {{"tool.bin", Dockerd::tool_bin}, {"eicar.com", eicar()}});
    // A ClamAV database with the EICAR file's hash.
    auto md5 = run("printf '%s' '" + eicar() + "' | md5sum");
    write_file(fs::path(data_) / "clamav/eicar.hdb",
               md5.second.substr(0, 32) + ":" + std::to_string(eicar().size()) + ":Hashsieve.Test.Eicar\n");
    scanners::ClamavOptions co;
    co.database_paths = {data_ + "/clamav/eicar.hdb"};
    auto clam = scanners::open_clamav(co);
    ASSERT_TRUE(clam.ok()) << clam.error().message();
    clamav_ = std::move(clam).value();
    auto engine = connect_docker_engine({"unix://" + Dockerd::socket});
    ASSERT_TRUE(engine.ok()) << engine.error().message();
    engine_ = std::move(engine).value();
  }
  void TearDown() override {
    if (Dockerd::skip_reason.empty()) run(Dockerd::cli() + " rm -f $(" + Dockerd::cli() + " ps -aq) >/dev/null");
  }

  // Starts a container running `script` then sleeping; waits until the script is done.
  std::string start(const std::string& name, const std::string& script, const std::string& extra = "") {
    return start_container(Dockerd::cli(), "--network none " + extra, name, script);
  }

  const ContainerScan* find(const TickResult& t, const std::string& name) {
    for (const auto& s : t.scans) {
      if (s.container.name == name) return &s;
    }
    return nullptr;
  }
  static const DriftFile* file(const ContainerScan& s, const std::string& path) {
    for (const auto& f : s.files) {
      if (f.path == path) return &f;
    }
    return nullptr;
  }
  static bool has_evidence(const DriftFile& f, const std::string& set) {
    for (const auto& e : f.evidence) {
      if (e.set == set) return true;
    }
    return false;
  }

  scan::testing::TempDir tmp_;
  std::string data_;
  std::vector<refset::LoadedRefset> sets_;
  std::unique_ptr<scanners::ExternalScanner> clamav_;
  std::unique_ptr<Engine> engine_;
};

TEST_F(RuntimeDockerTest, VerdictsArriveWithinOneTick) {
  start("bad", "cp /opt/samples/eicar.dat /tmp/eicar.com && cp /opt/samples/tool.bin /tmp/dropper");
  start("modifier", "printf XXXX | dd of=/opt/app bs=1 seek=100 conv=notrunc");
  start("benign", "echo hello > /tmp/hello.txt");
  auto results = store::open_sqlite_container_store(data_);
  ASSERT_TRUE(results.ok());
  ManualClock clock(1'800'000'000'000);
  Scheduler scheduler({}, clock, 1);
  DriftScanner drift(sets_, nullptr, {clamav_.get()}, DriftOptions{});
  Runner runner(*engine_, drift, scheduler, clock, results->get(), nullptr);
  auto tick = runner.tick();
  ASSERT_TRUE(tick.errors.empty()) << tick.errors[0].message;

  const ContainerScan* bad = find(tick, "bad");
  ASSERT_NE(bad, nullptr);
  EXPECT_EQ(bad->verdict, Verdict::malicious);
  const DriftFile* eicar_file = file(*bad, "/tmp/eicar.com");
  ASSERT_NE(eicar_file, nullptr);
  EXPECT_EQ(eicar_file->verdict, Verdict::malicious);
  EXPECT_TRUE(has_evidence(*eicar_file, "clamav"));  // through the ClamAV database
  EXPECT_TRUE(has_evidence(*eicar_file, "bad"));     // and through the reference set
  const DriftFile* dropper = file(*bad, "/tmp/dropper");
  ASSERT_NE(dropper, nullptr);
  EXPECT_EQ(dropper->verdict, Verdict::malicious);
  EXPECT_TRUE(has_evidence(*dropper, "bad"));

  const ContainerScan* modifier = find(tick, "modifier");
  ASSERT_NE(modifier, nullptr);
  const DriftFile* app = file(*modifier, "/opt/app");
  ASSERT_NE(app, nullptr);
  EXPECT_EQ(app->change, ChangeKind::modified);
  EXPECT_EQ(app->verdict, Verdict::modified);
  EXPECT_EQ(modifier->verdict, Verdict::modified);

  const ContainerScan* benign = find(tick, "benign");
  ASSERT_NE(benign, nullptr);
  EXPECT_EQ(benign->verdict, Verdict::unknown);
  EXPECT_TRUE(benign->errors.empty());
  ASSERT_NE(file(*benign, "/tmp/hello.txt"), nullptr);

  auto stored = (*results)->list_container_results(10);
  ASSERT_TRUE(stored.ok());
  EXPECT_EQ(stored->size(), 3u);
}

TEST_F(RuntimeDockerTest, OnceCliPrintsEveryContainerAndFailsOnPolicy) {
  start("bad", "cp /opt/samples/tool.bin /tmp/dropper");
  start("benign", "echo hello > /tmp/hello.txt");
  const std::string bin = std::string(HASHSIEVE_BINARY_DIR) + "/hashsieve";
  auto [rc, out] = run(bin + " runtime --once --docker-host unix://" + Dockerd::socket + " --data-dir " + data_ +
                       " --format json --fail-on malicious --output " + data_ + "/report.json");
  EXPECT_EQ(rc, 4) << out;
  std::ifstream in(data_ + "/report.json");
  auto j = nlohmann::json::parse(in, nullptr, false);
  ASSERT_FALSE(j.is_discarded());
  ASSERT_EQ(j["containers"].size(), 2u);
  for (const auto& c : j["containers"]) {
    EXPECT_EQ(c["verdict"], c["name"] == "bad" ? "malicious" : "unknown") << c.dump();
  }
  auto sarif = run(bin + " runtime --once --docker-host unix://" + Dockerd::socket + " --data-dir " + data_ +
                   " --format sarif");
  EXPECT_EQ(sarif.first, 0);
  EXPECT_NE(sarif.second.find("hashsieve.malicious"), std::string::npos);
}

TEST_F(RuntimeDockerTest, StartAndExecEventsTriggerScans) {
  auto results = store::open_sqlite_container_store(data_);
  ASSERT_TRUE(results.ok());
  SystemClock clock;
  SchedulerOptions o;
  o.min_interval = std::chrono::seconds(1);
  Scheduler scheduler(o, clock, 2);
  DriftScanner drift(sets_, nullptr, {}, DriftOptions{});
  Runner runner(*engine_, drift, scheduler, clock, results->get(), nullptr);
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
  run(Dockerd::cli() + " exec late cp /opt/samples/tool.bin /tmp/dropper");
  EXPECT_TRUE(wait_for(id, "malicious"));  // the exec event
  stop = true;
  runner.notify();
  loop.join();
}

TEST_F(RuntimeDockerTest, FaultsAreRecordedAndScanningGoesOn) {
  start("faulty",
        "mkfifo /tmp/pipe && mknod /tmp/null2 c 1 3 && dd if=/dev/zero of=/tmp/huge bs=1024 count=2048 && "
        "echo small > /tmp/small");
  auto list = engine_->list_containers();
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 1u);
  DriftOptions options;
  options.max_file_bytes = 1 << 20;
  DriftScanner drift(sets_, nullptr, {}, options);
  auto got = drift.scan(*engine_, (*list)[0]);
  ASSERT_TRUE(got.ok()) << got.error().message();
  std::map<std::string, ErrorCode> errors;
  for (const auto& e : got->errors) errors[e.path] = e.code;
  EXPECT_EQ(errors["/tmp/pipe"], ErrorCode::unsupported);
  EXPECT_EQ(errors["/tmp/null2"], ErrorCode::unsupported);
  EXPECT_EQ(errors["/tmp/huge"], ErrorCode::limit_exceeded);
  EXPECT_NE(file(*got, "/tmp/small"), nullptr);

  // A container that is gone by the time it is scanned (exited and removed).
  run(Dockerd::cli() + " rm -f faulty");
  auto gone = drift.scan(*engine_, (*list)[0]);
  ASSERT_FALSE(gone.ok());
  EXPECT_EQ(gone.error().code(), ErrorCode::not_found);
}

TEST_F(RuntimeDockerTest, MissingSocketIsAClearError) {
  auto e = connect_docker_engine({"unix://" + data_ + "/no.sock"});
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.error().code(), ErrorCode::not_found);
  EXPECT_NE(e.error().message().find("no.sock"), std::string::npos);
  // A file that is not a socket.
  write_file(fs::path(data_) / "plain.sock", "x");
  e = connect_docker_engine({"unix://" + data_ + "/plain.sock"});
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.error().code(), ErrorCode::invalid_argument);

  // The engine's socket without the permission to open it: an unprivileged
  // user (setpriv drops root) gets a clear error and exit status 1.
  const std::string setpriv = find_program("setpriv");
  if (setpriv.empty()) return;
  const fs::path open_dir = fs::temp_directory_path() / ("hsrt-nobody-" + std::to_string(::getpid()));
  fs::create_directories(open_dir);
  fs::permissions(open_dir, fs::perms::all);
  auto [rc, out] = run(setpriv + " --reuid 65534 --regid 65534 --clear-groups " + std::string(HASHSIEVE_BINARY_DIR) +
                       "/hashsieve runtime --once --data-dir " + open_dir.string() + " --docker-host unix://" +
                       Dockerd::socket);
  EXPECT_EQ(rc, 1) << out;
  EXPECT_NE(out.find("docker socket " + Dockerd::socket + ": Permission denied"), std::string::npos) << out;
  fs::remove_all(open_dir);
}

TEST_F(RuntimeDockerTest, FullScanReadsTheWholeFilesystemFromExport) {
  // Drift only: nothing bad was written. The image itself ships the bad tool.
  start("quiet", "echo hello > /tmp/hello.txt && printf XXXX | dd of=/opt/app bs=1 seek=100 conv=notrunc");
  auto list = engine_->list_containers();
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 1u);
  DriftScanner drift(sets_, nullptr, {clamav_.get()}, DriftOptions{});
  auto drifted = drift.scan(*engine_, (*list)[0]);
  ASSERT_TRUE(drifted.ok()) << drifted.error().message();
  EXPECT_EQ(drifted->verdict, Verdict::modified);
  EXPECT_EQ(file(*drifted, "/opt/samples/tool.bin"), nullptr);

  DriftOptions options;
  options.full = true;
  options.max_file_bytes = 1 << 20;  // busybox (about 2 MB) is over it: a recorded limit
  DriftScanner full(sets_, nullptr, {clamav_.get()}, options);
  auto got = full.scan(*engine_, (*list)[0]);
  ASSERT_TRUE(got.ok()) << got.error().message();
  EXPECT_TRUE(got->full);
  struct Case {
    std::string path;
    ChangeKind change;
    Verdict want;
  };
  const Case cases[] = {
      {"/opt/samples/tool.bin", ChangeKind::unchanged, Verdict::malicious},  // the "bad" set
      {"/opt/samples/eicar.dat", ChangeKind::unchanged, Verdict::malicious},  // the set and ClamAV
      {"/opt/app", ChangeKind::modified, Verdict::modified},
      {"/tmp/hello.txt", ChangeKind::added, Verdict::unknown},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.path);
    const DriftFile* f = file(*got, c.path);
    ASSERT_NE(f, nullptr);
    EXPECT_EQ(f->change, c.change);
    EXPECT_EQ(f->verdict, c.want);
    EXPECT_EQ(f->sha256.size(), 64u);
  }
  EXPECT_EQ(got->verdict, Verdict::malicious);
  ASSERT_EQ(got->errors.size(), 1u);
  EXPECT_EQ(got->errors[0].path, "/bin/busybox");
  EXPECT_EQ(got->errors[0].code, ErrorCode::limit_exceeded);
  EXPECT_GT(got->skipped, 10u);  // the busybox symlinks, directories

  // The CLI: --full in the JSON report, busybox hashed within the default limit.
  const std::string bin = std::string(HASHSIEVE_BINARY_DIR) + "/hashsieve";
  auto [rc, out] = run(bin + " runtime --once --full --docker-host unix://" + Dockerd::socket + " --data-dir " +
                       data_ + " --format json --fail-on malicious --output " + data_ + "/full.json");
  EXPECT_EQ(rc, 4) << out;
  std::ifstream in(data_ + "/full.json");
  auto j = nlohmann::json::parse(in, nullptr, false);
  ASSERT_FALSE(j.is_discarded());
  ASSERT_EQ(j["containers"].size(), 1u);
  const auto& c = j["containers"][0];
  EXPECT_EQ(c["verdict"], "malicious");
  EXPECT_EQ(c["summary"]["full_scan"], true);
  EXPECT_EQ(c["summary"]["drifted_files"], 3);  // hello.txt, app and the test's .ready
  EXPECT_TRUE(c["errors"].empty()) << c["errors"].dump();
  bool busybox = false;
  for (const auto& f : c["files"]) busybox = busybox || (f["path"] == "/bin/busybox" && f["change"] == "unchanged");
  EXPECT_TRUE(busybox);
}

// Restarts the engine while a sweep is in progress: the containers the sweep
// had not finished get a recorded error and a retry, the sweep itself ends,
// and the next tick (also of a new scheduler restored from the store)
// brings their verdicts.
TEST_F(RuntimeDockerTest, EngineRestartInTheMiddleOfASweep) {
  // Enough drift per container (80 requests, each a mount of the container
  // with vfs) that the engine stops while the sweep is still going.
  const std::string many = "i=0; while [ $i -lt 40 ]; do echo $i > /tmp/f$i; i=$((i+1)); done";
  std::vector<std::string> ids;
  for (int i = 0; i < 4; ++i) {
    ids.push_back(start("sweep" + std::to_string(i), "cp /opt/samples/tool.bin /tmp/dropper && " + many,
                        "--restart always --stop-timeout 1"));
  }
  auto results = store::open_sqlite_container_store(data_);
  ASSERT_TRUE(results.ok());
  ManualClock clock(1'800'000'000'000);
  SchedulerOptions so;
  so.max_concurrency = 1;  // one container after the other
  Scheduler scheduler(so, clock, 4);
  DriftScanner drift(sets_, nullptr, {}, DriftOptions{});
  std::thread stopper;
  RunnerOptions ro;
  ro.on_scan = [&](const ContainerScan&) {
    // After the first container: the engine goes away while the sweep goes on.
    if (!stopper.joinable()) stopper = std::thread([] { Dockerd::stop(); });
  };
  Runner runner(*engine_, drift, scheduler, clock, results->get(), nullptr, ro);
  auto sweep = runner.tick();
  ASSERT_TRUE(stopper.joinable());
  stopper.join();
  EXPECT_TRUE(sweep.errors.empty());  // the list was read before the engine went away
  ASSERT_EQ(sweep.scans.size(), 4u);  // every container was attempted
  EXPECT_TRUE(sweep.scans[0].errors.empty());
  EXPECT_EQ(sweep.scans[0].verdict, Verdict::malicious);
  std::vector<std::string> interrupted;
  for (const auto& s : sweep.scans) {
    bool unavailable = false;
    for (const auto& e : s.errors) unavailable = unavailable || e.code == ErrorCode::unavailable;
    if (!unavailable) continue;
    interrupted.push_back(s.container.id);
    auto state = scheduler.state(s.container.id);
    ASSERT_TRUE(state.has_value());
    EXPECT_EQ(state->failures, 1u);
  }
  // The last container cannot have been reached before the engine stopped.
  ASSERT_FALSE(interrupted.empty());
  EXPECT_EQ(interrupted.back(), sweep.scans.back().container.id);

  ASSERT_TRUE(Dockerd::start()) << Dockerd::skip_reason;
  for (int i = 0; i < 200; ++i) {
    auto l = engine_->list_containers();
    if (l.ok() && l->size() == ids.size()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  // A new scheduler (as after a restart of the scanner) carries on from the store.
  Scheduler restored(so, clock, 5);
  Runner again(*engine_, drift, restored, clock, results->get(), nullptr);
  ASSERT_TRUE(again.restore().ok());
  for (const auto& id : interrupted) {
    SCOPED_TRACE(id);
    ASSERT_TRUE(restored.state(id).has_value());
    EXPECT_EQ(restored.state(id)->failures, 1u);
  }
  // The retry is min_interval (30 s) after the failure; the completed container is not due for an hour.
  clock.advance(std::chrono::seconds(31));
  auto next = again.tick();
  EXPECT_TRUE(next.errors.empty());
  ASSERT_EQ(next.scans.size(), interrupted.size());
  for (const auto& s : next.scans) {
    SCOPED_TRACE(s.container.name);
    EXPECT_NE(std::find(interrupted.begin(), interrupted.end(), s.container.id), interrupted.end());
    EXPECT_TRUE(s.errors.empty()) << s.errors[0].message;
    EXPECT_EQ(s.verdict, Verdict::malicious);
    EXPECT_EQ(restored.state(s.container.id)->failures, 0u);
    auto stored = (*results)->get_container_result(s.container.id);
    ASSERT_TRUE(stored.ok() && stored->has_value());
    EXPECT_EQ((*stored)->verdict, "malicious");
  }
}

// Last: restarts the engine. Containers come back with their restart policy.
TEST_F(RuntimeDockerTest, EngineRestartIsRecordedAndCaughtUp) {
  start("survivor", "cp /opt/samples/tool.bin /tmp/dropper", "--restart always");
  auto results = store::open_sqlite_container_store(data_);
  ASSERT_TRUE(results.ok());
  ManualClock clock(1'800'000'000'000);
  Scheduler scheduler({}, clock, 3);
  DriftScanner drift(sets_, nullptr, {}, DriftOptions{});
  Runner runner(*engine_, drift, scheduler, clock, results->get(), nullptr);
  Dockerd::stop();
  auto down = runner.tick();
  ASSERT_EQ(down.errors.size(), 1u);
  EXPECT_EQ(down.errors[0].code, ErrorCode::unavailable);
  ASSERT_TRUE(Dockerd::start()) << Dockerd::skip_reason;
  // The container restarts with the daemon; its drift is kept.
  for (int i = 0; i < 100; ++i) {
    auto l = engine_->list_containers();
    if (l.ok() && !l->empty()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  clock.advance(std::chrono::seconds(1));
  auto up = runner.tick();
  EXPECT_TRUE(up.errors.empty());
  ASSERT_NE(find(up, "survivor"), nullptr);
  EXPECT_EQ(find(up, "survivor")->verdict, Verdict::malicious);
}

// One dockerd for the whole suite.
[[maybe_unused]] ::testing::Environment* const kDockerd = ::testing::AddGlobalTestEnvironment(new Dockerd);

}  // namespace
}  // namespace hashsieve::runtime
