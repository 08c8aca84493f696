// A real RabbitMQ broker for integration tests: Debian's rabbitmq-server on a
// free loopback port, with its own node name, Mnesia and log directories in a
// temporary directory, its own epmd (started by the fixture on a free port so
// that it can be stopped again) and no plugins. Runs as the `rabbitmq` user
// when the tests run as root (the broker refuses nothing as root, but its
// files would then belong to root and the Debian wrapper expects the user).
// Header-only and free of hashsieve dependencies.
//
// Typical use (one broker per test binary, it takes ~5-10 s to start):
//   static RabbitMqFixture* broker = ...;     // see RabbitMqEnvironment
//   if (auto why = broker->start(); !why.empty()) GTEST_SKIP() << why;
//   open_rabbitmq_queue(broker->url("/"), ...);
//   broker->stop(); broker->restart();        // restart keeps the data
#pragma once

#include <pwd.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <thread>

#include "registry_fixture.h"  // free_loopback_port
#include "subprocess.h"

namespace hashsieve::testsupport {

// True when something accepts TCP connections on 127.0.0.1:port.
inline bool loopback_port_open(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool open = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return open;
}

class RabbitMqFixture {
 public:
  static constexpr const char* kServer = "/usr/lib/rabbitmq/bin/rabbitmq-server";

  RabbitMqFixture() = default;
  RabbitMqFixture(const RabbitMqFixture&) = delete;
  RabbitMqFixture& operator=(const RabbitMqFixture&) = delete;
  ~RabbitMqFixture() {
    stop();
    epmd_.stop();
    if (!dir_.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(dir_, ec);
    }
  }

  // Starts the broker; "" on success, else why it could not (a reason to skip).
  std::string start() {
    if (running_) return "";
    if (!error_.empty()) return error_;
    if (::access(kServer, X_OK) != 0 || !have_program("epmd")) {
      return error_ = "rabbitmq-server is not installed (scripts/setup.sh installs it)";
    }
    if (dir_.empty()) {
      if (auto why = prepare(); !why.empty()) return error_ = why;
    }
    if (auto why = launch(); !why.empty()) return error_ = why;
    return "";
  }

  // SIGTERM to the broker (a clean shutdown: durable queues and persistent
  // messages survive), waits until it is gone.
  void stop() {
    if (!running_) return;
    pid_t beam = read_pid();
    if (beam > 0) ::kill(beam, SIGTERM);
    for (int i = 0; i < 300 && beam > 0 && ::kill(beam, 0) == 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    if (beam > 0 && ::kill(beam, 0) == 0) ::kill(beam, SIGKILL);
    server_.stop();
    running_ = false;
  }

  // Stops and starts the same node (same data, same port).
  std::string restart() {
    stop();
    return launch();
  }

  bool running() const { return running_; }
  int port() const { return port_; }
  std::string url(const std::string& vhost = "/") const {
    std::string v = vhost == "/" ? "%2f" : vhost;
    return "amqp://guest:guest@127.0.0.1:" + std::to_string(port_) + "/" + v;
  }
  const std::string& node() const { return node_; }
  std::string log_dir() const { return dir_ + "/log"; }

 private:
  std::string prepare() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "hashsieve-rabbitmq-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) return "mkdtemp failed";
    dir_ = tmpl;
    std::ofstream(dir_ + "/enabled_plugins") << "[].\n";
    if (::geteuid() == 0) {
      const passwd* pw = ::getpwnam("rabbitmq");
      if (pw == nullptr) return "running as root and there is no rabbitmq user";
      as_rabbitmq_ = true;
      if (::chown(dir_.c_str(), pw->pw_uid, pw->pw_gid) != 0 ||
          ::chown((dir_ + "/enabled_plugins").c_str(), pw->pw_uid, pw->pw_gid) != 0) {
        return "cannot give the broker directory to the rabbitmq user";
      }
    }
    port_ = free_loopback_port();
    dist_port_ = free_loopback_port();
    epmd_port_ = free_loopback_port();
    if (port_ <= 0 || dist_port_ <= 0 || epmd_port_ <= 0 || port_ == dist_port_ || dist_port_ == epmd_port_ ||
        port_ == epmd_port_) {
      return "no free loopback ports";
    }
    std::random_device rd;
    node_ = "hs" + std::to_string(rd() % 100000000) + "@localhost";
    // Our own epmd, so that it can be stopped with the fixture (the one the
    // broker would start is a daemon that outlives it).
    if (!epmd_.start({"epmd", "-port", std::to_string(epmd_port_), "-address", "127.0.0.1"}, false)) {
      return "cannot start epmd";
    }
    for (int i = 0; i < 100 && !loopback_port_open(epmd_port_); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return "";
  }

  std::string launch() {
    std::vector<std::string> argv;
    if (as_rabbitmq_) argv = {"setpriv", "--reuid=rabbitmq", "--regid=rabbitmq", "--init-groups"};
    for (const std::string& e : std::vector<std::string>{
             "env", "HOME=" + dir_, "RABBITMQ_MNESIA_BASE=" + dir_ + "/mnesia", "RABBITMQ_LOG_BASE=" + dir_ + "/log",
             "RABBITMQ_NODE_IP_ADDRESS=127.0.0.1", "RABBITMQ_NODE_PORT=" + std::to_string(port_),
             "RABBITMQ_NODENAME=" + node_, "RABBITMQ_DIST_PORT=" + std::to_string(dist_port_),
             "ERL_EPMD_PORT=" + std::to_string(epmd_port_), "ERL_EPMD_ADDRESS=127.0.0.1",
             "RABBITMQ_ENABLED_PLUGINS_FILE=" + dir_ + "/enabled_plugins", "RABBITMQ_PID_FILE=" + dir_ + "/pid",
             "RABBITMQ_CONFIG_FILE=" + dir_ + "/rabbitmq", "RABBITMQ_ADVANCED_CONFIG_FILE=" + dir_ + "/advanced.config",
             "RABBITMQ_CONF_ENV_FILE=" + dir_ + "/rabbitmq-env.conf", kServer}) {
      argv.push_back(e);
    }
    std::error_code ec;
    std::filesystem::remove(dir_ + "/pid", ec);
    if (!server_.start(argv, false, dir_ + "/server.stderr")) return "cannot start rabbitmq-server";
    // Ready when the AMQP port accepts connections (the listener opens last,
    // after the boot steps). 60 s: the machine may be busy compiling.
    for (int i = 0; i < 1200; ++i) {
      if (loopback_port_open(port_)) {
        running_ = true;
        return "";
      }
      int status = 0;
      if (::waitpid(server_.pid(), &status, WNOHANG) == server_.pid()) {
        return "rabbitmq-server exited during startup; see " + dir_ + "/log";
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    server_.stop();
    return "rabbitmq-server did not open its port within 60 s";
  }

  pid_t read_pid() const {
    std::ifstream in(dir_ + "/pid");
    long pid = 0;
    in >> pid;
    return static_cast<pid_t>(pid);
  }

  Child server_;
  Child epmd_;
  std::string dir_;
  std::string node_;
  std::string error_;
  int port_ = -1;
  int dist_port_ = -1;
  int epmd_port_ = -1;
  bool as_rabbitmq_ = false;
  bool running_ = false;
};

}  // namespace hashsieve::testsupport
