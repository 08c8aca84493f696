// Expands command-line paths into the regular files to hash, the way sdhash
// does (directories only with -r), but in a deterministic, sorted order and
// with a warning for everything that is skipped.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace hashsieve::cli {

struct InputFile {
  std::string path;   // as printed in digests: the argument, or <dir>/<relative path>
  std::uint64_t size = 0;
};

struct InputProblem {
  std::string path;
  std::string message;
};

struct ExpandedInputs {
  std::vector<InputFile> files;
  std::vector<InputProblem> problems;  // missing, unreadable, directory without -r, special file
};

ExpandedInputs expand_inputs(const std::vector<std::string>& args, bool recursive);

}  // namespace hashsieve::cli
