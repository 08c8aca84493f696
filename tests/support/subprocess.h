// Child processes for tests that drive real servers and tools: spawn with
// argv (no shell), optionally read stdout, stop by pid. Header-only so any
// test target can use it (registry fixtures, the webhook service tests).
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace hashsieve::testsupport {

// True when `name` is an executable in PATH (or an executable path).
inline bool have_program(const std::string& name) {
  if (name.find('/') != std::string::npos) return ::access(name.c_str(), X_OK) == 0;
  const char* path = std::getenv("PATH");
  std::string dirs = path != nullptr ? path : "/usr/bin:/bin";
  std::size_t start = 0;
  while (start <= dirs.size()) {
    std::size_t colon = dirs.find(':', start);
    if (colon == std::string::npos) colon = dirs.size();
    const std::string candidate = dirs.substr(start, colon - start) + "/" + name;
    if (::access(candidate.c_str(), X_OK) == 0) return true;
    start = colon + 1;
  }
  return false;
}

// A running child. stdout is a pipe when requested, else inherited; stderr
// goes to `stderr_path` when given (server logs for failure messages).
class Child {
 public:
  Child() = default;
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  Child(Child&& o) noexcept : pid_(o.pid_), stdout_fd_(o.stdout_fd_) {
    o.pid_ = -1;
    o.stdout_fd_ = -1;
  }
  ~Child() { stop(); }

  // Returns false when the program could not be started.
  bool start(const std::vector<std::string>& argv, bool capture_stdout, const std::string& stderr_path = "") {
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    int pipe_fds[2] = {-1, -1};
    if (capture_stdout) {
      if (::pipe2(pipe_fds, O_CLOEXEC) != 0) return false;
      posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], 1);
    }
    if (!stderr_path.empty()) {
      posix_spawn_file_actions_addopen(&actions, 2, stderr_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    }
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    const int rc = posix_spawnp(&pid_, args[0], &actions, nullptr, args.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (capture_stdout) {
      ::close(pipe_fds[1]);
      stdout_fd_ = pipe_fds[0];
    }
    if (rc != 0) {
      pid_ = -1;
      return false;
    }
    return true;
  }

  // One line of the child's stdout (without '\n'); "" at EOF.
  std::string read_line() {
    std::string line;
    char c;
    while (stdout_fd_ >= 0 && ::read(stdout_fd_, &c, 1) == 1) {
      if (c == '\n') break;
      line.push_back(c);
    }
    return line;
  }

  // SIGTERM, then SIGKILL after a grace period; reaps the child.
  void stop() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      for (int i = 0; i < 50; ++i) {
        int status = 0;
        if (::waitpid(pid_, &status, WNOHANG) == pid_) {
          pid_ = -1;
          break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
      if (pid_ > 0) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, nullptr, 0);
        pid_ = -1;
      }
    }
    if (stdout_fd_ >= 0) {
      ::close(stdout_fd_);
      stdout_fd_ = -1;
    }
  }

  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
  int stdout_fd_ = -1;
};

// Runs argv to completion; returns the exit status (-1 when it could not
// start or was killed). Output goes to `log_path` when given.
inline int run_program(const std::vector<std::string>& argv, const std::string& log_path = "") {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  if (!log_path.empty()) {
    posix_spawn_file_actions_addopen(&actions, 1, log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
  }
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  const int rc = posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) return -1;
  int status = 0;
  if (::waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) return -1;
  return WEXITSTATUS(status);
}

}  // namespace hashsieve::testsupport
