// Helpers for tests that compare our digests with Debian's own tools on real
// files of this machine.
#pragma once

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace hashsieve::digest::real_files {

// Runs a shell command and returns its standard output.
inline std::string run(const std::string& command) {
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(command.c_str(), "r"), pclose);
  if (!pipe) return {};
  std::string out;
  char buf[4096];
  std::size_t n;
  while ((n = fread(buf, 1, sizeof buf, pipe.get())) > 0) out.append(buf, n);
  return out;
}

// A deterministic sample of real files: regular files of 1 byte .. 8 MiB in
// /usr/bin and /usr/lib/x86_64-linux-gnu, sorted, every `stride`-th one, at
// most `count`. Names needing shell or CSV quoting are left out.
inline std::vector<std::string> sample_files(std::size_t count, std::size_t stride) {
  std::vector<std::string> all;
  for (const char* dir : {"/usr/bin", "/usr/lib/x86_64-linux-gnu"}) {
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
      std::error_code fec;
      if (!e.is_regular_file(fec) || e.is_symlink(fec)) continue;
      const auto size = e.file_size(fec);
      const std::string p = e.path().string();
      if (fec || size == 0 || size > (8u << 20)) continue;
      if (p.find_first_of("'\\\n\",") != std::string::npos) continue;
      all.push_back(p);
    }
  }
  std::sort(all.begin(), all.end());
  std::vector<std::string> picked;
  for (std::size_t i = 0; i < all.size() && picked.size() < count; i += stride) picked.push_back(all[i]);
  return picked;
}

}  // namespace hashsieve::digest::real_files
