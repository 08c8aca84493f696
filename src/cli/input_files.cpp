#include "input_files.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

namespace hashsieve::cli {
namespace {

namespace fs = std::filesystem;

std::string join(const std::string& dir, const std::string& name) {
  if (!dir.empty() && dir.back() == '/') return dir + name;
  return dir + "/" + name;
}

void walk(const std::string& dir, ExpandedInputs& out) {
  std::error_code ec;
  fs::directory_iterator it(dir, ec);
  if (ec) {
    out.problems.push_back({dir, "cannot read directory: " + ec.message()});
    return;
  }
  std::vector<std::string> names;
  for (const auto& entry : it) names.push_back(entry.path().filename().string());
  std::sort(names.begin(), names.end());
  for (const std::string& name : names) {
    const std::string path = join(dir, name);
    struct stat lst {};
    if (::lstat(path.c_str(), &lst) != 0) {
      out.problems.push_back({path, std::strerror(errno)});
      continue;
    }
    // Symbolic links to directories are not followed, which also rules out cycles.
    if (S_ISDIR(lst.st_mode)) {
      walk(path, out);
      continue;
    }
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
      out.problems.push_back({path, std::string("dangling link: ") + std::strerror(errno)});
      continue;
    }
    if (S_ISREG(st.st_mode)) {
      out.files.push_back({path, static_cast<std::uint64_t>(st.st_size)});
    } else if (!S_ISDIR(st.st_mode)) {
      // FIFOs, sockets and devices: reading them could block or never end.
      out.problems.push_back({path, "not a regular file, skipped"});
    }
  }
}

}  // namespace

ExpandedInputs expand_inputs(const std::vector<std::string>& args, bool recursive) {
  ExpandedInputs out;
  for (const std::string& arg : args) {
    struct stat st {};
    if (::stat(arg.c_str(), &st) != 0) {
      out.problems.push_back({arg, std::strerror(errno)});
      continue;
    }
    if (S_ISDIR(st.st_mode)) {
      if (recursive) {
        walk(arg, out);
      } else {
        out.problems.push_back({arg, "is a directory (use -r to hash the files in it)"});
      }
      continue;
    }
    if (!S_ISREG(st.st_mode)) {
      out.problems.push_back({arg, "not a regular file, skipped"});
      continue;
    }
    out.files.push_back({arg, static_cast<std::uint64_t>(st.st_size)});
  }
  return out;
}

}  // namespace hashsieve::cli
