// Entry points of the hashsieve commands. Each command parses its own
// arguments into an options struct and returns the process exit code
// (see docs/cli.md for the table of exit codes).
#pragma once

#include <string>
#include <vector>

namespace hashsieve::cli {

// Process exit codes shared by every command.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;      // an operation failed (I/O, bad data)
inline constexpr int kExitUsage = 2;        // bad command-line arguments
inline constexpr int kExitPartial = 3;      // done, but some inputs were skipped with warnings
inline constexpr int kExitPolicy = 4;       // scan done, and the verdict reached --fail-on

int run(int argc, char** argv);
int run_digest(const std::vector<std::string>& args);
int run_hash(const std::vector<std::string>& args);
int run_refset(const std::vector<std::string>& args);
int run_scan(const std::vector<std::string>& args);
int run_serve(const std::vector<std::string>& args);
int run_runtime(const std::vector<std::string>& args);
int run_worker(const std::vector<std::string>& args);

}  // namespace hashsieve::cli
