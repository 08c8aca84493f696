// The benchmark "mix": the files listed in $HASHSIEVE_MIX_LIST (made by
// bench/make_mix.sh: >= 200 MB of real files from /usr/lib), copied into heap
// buffers once, so every benchmark measures hashing rather than I/O, page
// faults or the page-table cost of file mappings (which made SDBF figures
// vary by up to 25 % between runs).
#pragma once

#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <span>
#include <string>
#include <vector>

#include "hashsieve/core/file.h"

namespace hashsieve::bench {

struct MixFile {
  std::vector<std::uint8_t> data;
  std::span<const std::uint8_t> bytes() const { return data; }
  std::size_t size() const { return data.size(); }
};

struct Mix {
  std::vector<std::string> paths;
  std::vector<MixFile> files;  // files[i] is paths[i]; unreadable entries are left out of both
  std::uint64_t total_bytes = 0;
};

inline const Mix& mix() {
  static const Mix m = [] {
    Mix out;
    const char* list = std::getenv("HASHSIEVE_MIX_LIST");
    if (list == nullptr) {
      std::fprintf(stderr, "set HASHSIEVE_MIX_LIST (bench/make_mix.sh > /tmp/mix.list)\n");
      std::exit(2);
    }
    std::ifstream in(list);
    for (std::string path; std::getline(in, path);) {
      auto f = MappedFile::open(path);
      if (!f.ok()) continue;
      const auto bytes = f->bytes();
      out.total_bytes += bytes.size();
      out.paths.push_back(path);
      out.files.push_back({std::vector<std::uint8_t>(bytes.begin(), bytes.end())});
    }
    if (out.files.empty()) {
      std::fprintf(stderr, "no readable files in %s\n", list);
      std::exit(2);
    }
    return out;
  }();
  return m;
}

}  // namespace hashsieve::bench
