// Runs the built hashsieve binary through the shell for end-to-end CLI tests.
#pragma once

#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

namespace hashsieve::cli::testing {

struct CommandResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

inline std::string hashsieve_binary() { return std::string(HASHSIEVE_BINARY_DIR) + "/hashsieve"; }

inline std::string read_text(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Runs `sh -c "cd DIR && COMMAND"`; COMMAND may use $HASHSIEVE for the binary.
inline CommandResult run_in(const std::string& dir, const std::string& command) {
  const auto err_path = std::filesystem::temp_directory_path() /
                        ("hashsieve_cli_err_" + std::to_string(::getpid()));
  const std::string full = "cd '" + dir + "' && HASHSIEVE='" + hashsieve_binary() + "' && " + command +
                           " 2>'" + err_path.string() + "'";
  CommandResult r;
  std::FILE* pipe = ::popen(full.c_str(), "r");
  if (pipe == nullptr) return r;
  char buf[1 << 16];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0) r.out.append(buf, n);
  const int status = ::pclose(pipe);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.err = read_text(err_path);
  std::filesystem::remove(err_path);
  return r;
}

}  // namespace hashsieve::cli::testing
