// A throwaway PostgreSQL cluster for integration tests: initdb into a temp
// directory, one server per test binary on 127.0.0.1 (a free port) with its
// socket in that directory and trust authentication, a fresh database per
// test. PostgreSQL refuses to run as root, so as root initdb/pg_ctl run as
// the `postgres` user (runuser) on a directory chowned to it.
//
//   auto& pg = hashsieve::testsupport::PostgresCluster::instance();
//   if (!pg.skip_reason().empty()) GTEST_SKIP() << pg.skip_reason();
//   ASSERT_TRUE(pg.error().empty()) << pg.error();
//   std::string url = pg.create_database();   // "postgresql:///db?host=...&port=..."
//
// The cluster starts on first use (listing tests starts nothing) and stops
// in the gtest Environment's TearDown.
#pragma once

#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <string>
#include <vector>

#include "subprocess.h"

namespace hashsieve::testsupport {

class PostgresCluster {
 public:
  static PostgresCluster& instance() {
    static PostgresCluster cluster;
    static std::once_flag started;
    std::call_once(started, [] { cluster.start_cluster(); });
    return cluster;
  }

  // Non-empty: PostgreSQL is not installed here; the test should skip.
  const std::string& skip_reason() const { return skip_; }
  // Non-empty: it is installed but the cluster did not come up (a failure).
  const std::string& error() const { return error_; }
  int port() const { return port_; }
  const std::string& socket_dir() const { return dir_; }

  // A libpq URI for database `db` on this cluster.
  std::string url(const std::string& db) const {
    return "postgresql:///" + db + "?host=" + dir_ + "&port=" + std::to_string(port_) + "&user=postgres";
  }
  std::string conninfo(const std::string& db) const {
    return "host=" + dir_ + " port=" + std::to_string(port_) + " user=postgres dbname=" + db;
  }

  // Creates a new empty database and returns its URL ("" and a gtest
  // failure when that fails).
  std::string create_database() {
    static std::atomic<int> counter{0};
    const std::string name = "hs_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++);
    std::string err = execute("postgres", "CREATE DATABASE " + name);
    if (!err.empty()) {
      ADD_FAILURE() << "CREATE DATABASE " << name << ": " << err;
      return "";
    }
    return url(name);
  }

  // Runs one SQL statement; "" on success, else the server's message.
  std::string execute(const std::string& db, const std::string& sql, std::string* first_value = nullptr) const {
    PGconn* c = PQconnectdb(conninfo(db).c_str());
    std::string err;
    if (PQstatus(c) != CONNECTION_OK) {
      err = PQerrorMessage(c);
    } else {
      PGresult* r = PQexec(c, sql.c_str());
      const ExecStatusType st = PQresultStatus(r);
      if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        err = PQresultErrorMessage(r);
      } else if (first_value != nullptr) {
        *first_value = PQntuples(r) > 0 ? PQgetvalue(r, 0, 0) : "";
      }
      PQclear(r);
    }
    PQfinish(c);
    return err;
  }

  // pg_ctl restart -m fast / stop / start; true on success.
  bool restart() { return pg_ctl({"-m", "fast", "restart"}); }
  bool stop() { return pg_ctl({"-m", "fast", "stop"}); }
  bool start() { return pg_ctl({"start"}); }

  void shutdown() {
    if (running_) (void)stop();
    running_ = false;
    if (!dir_.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(dir_, ec);
      dir_.clear();
    }
  }

  std::string log_tail() const {
    std::ifstream in(dir_ + "/server.log");
    std::stringstream ss;
    ss << in.rdbuf();
    std::string s = ss.str();
    return s.size() > 2000 ? s.substr(s.size() - 2000) : s;
  }

 private:
  PostgresCluster() = default;
  ~PostgresCluster() { shutdown(); }

  static std::string find_bin(const std::string& name) {
    namespace fs = std::filesystem;
    std::error_code ec;
    if (fs::is_directory("/usr/lib/postgresql", ec)) {
      for (const auto& v : fs::directory_iterator("/usr/lib/postgresql", ec)) {
        const fs::path p = v.path() / "bin" / name;
        if (::access(p.c_str(), X_OK) == 0) return p.string();
      }
    }
    return have_program(name) ? name : "";
  }

  std::vector<std::string> as_postgres(std::vector<std::string> argv) const {
    if (::geteuid() != 0) return argv;
    std::vector<std::string> out = {"runuser", "-u", "postgres", "--"};
    out.insert(out.end(), argv.begin(), argv.end());
    return out;
  }

  bool pg_ctl(std::vector<std::string> action) {
    std::vector<std::string> argv = {pg_ctl_, "-D", dir_ + "/data", "-l", dir_ + "/server.log", "-w", "-t", "60",
                                     "-o", server_options_};
    argv.insert(argv.end(), action.begin(), action.end());
    const bool ok = run_program(as_postgres(argv), dir_ + "/pg_ctl.log") == 0;
    if (ok) running_ = action.back() != "stop";
    return ok;
  }

  static int free_port() {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    int port = 0;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
      port = ntohs(addr.sin_port);
    }
    ::close(fd);
    return port;
  }

  void start_cluster() {
    const std::string initdb = find_bin("initdb");
    pg_ctl_ = find_bin("pg_ctl");
    if (initdb.empty() || pg_ctl_.empty()) {
      skip_ = "PostgreSQL server binaries (initdb, pg_ctl) not found; install postgresql-15";
      return;
    }
    uid_t uid = ::geteuid();
    gid_t gid = ::getegid();
    if (uid == 0) {
      const passwd* pw = ::getpwnam("postgres");
      if (pw == nullptr || !have_program("runuser")) {
        skip_ = "running as root without a 'postgres' user (or runuser) to run the server as";
        return;
      }
      uid = pw->pw_uid;
      gid = pw->pw_gid;
    }
    std::string tmpl = (std::filesystem::temp_directory_path() / "hs-pg-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) {
      error_ = "mkdtemp failed";
      return;
    }
    dir_ = tmpl;
    if (::chown(dir_.c_str(), uid, gid) != 0) {
      error_ = "chown " + dir_ + " failed";
      return;
    }
    port_ = free_port();
    server_options_ = "-c listen_addresses=127.0.0.1 -p " + std::to_string(port_) + " -k " + dir_ +
                      " -c fsync=off -c full_page_writes=off -c synchronous_commit=off";
    // Logs go to files the postgres user can write: create them as it.
    if (run_program(as_postgres({"touch", dir_ + "/initdb.log", dir_ + "/pg_ctl.log", dir_ + "/server.log"})) != 0) {
      error_ = "cannot create log files in " + dir_;
      return;
    }
    if (run_program(as_postgres({initdb, "-D", dir_ + "/data", "-A", "trust", "-U", "postgres", "-E", "UTF8",
                                 "--no-sync", "--locale=C.UTF-8"}),
                    dir_ + "/initdb.log") != 0) {
      error_ = "initdb failed; see " + dir_ + "/initdb.log";
      return;
    }
    if (!start()) {
      error_ = "pg_ctl start failed: " + log_tail();
      return;
    }
  }

  std::string skip_;
  std::string error_;
  std::string dir_;
  std::string pg_ctl_;
  std::string server_options_;
  int port_ = 0;
  bool running_ = false;
};

// Stops the cluster (if a test started it) after the last test.
class PostgresEnvironment : public ::testing::Environment {
 public:
  void TearDown() override {
    // instance() would start a cluster; only stop one that exists.
    if (started()) PostgresCluster::instance().shutdown();
  }
  static bool& started() {
    static bool s = false;
    return s;
  }
};

inline ::testing::Environment* const kPostgresEnvironment =
    ::testing::AddGlobalTestEnvironment(new PostgresEnvironment);

// Use this instead of PostgresCluster::instance() in tests.
inline PostgresCluster& postgres_cluster() {
  PostgresEnvironment::started() = true;
  return PostgresCluster::instance();
}

}  // namespace hashsieve::testsupport
