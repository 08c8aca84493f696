// The benchmark "mix": the files listed in $HASHSIEVE_MIX_LIST (made by
// bench/make_mix.sh: >= 200 MB of real files from /usr/lib), mapped once and
// paged in, so every benchmark measures hashing rather than I/O or faults.
#pragma once

#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "hashsieve/core/file.h"

namespace hashsieve::bench {

struct Mix {
  std::vector<std::string> paths;
  std::vector<MappedFile> files;  // files[i] is paths[i]; unreadable entries are left out of both
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
    unsigned sink = 0;
    for (std::string path; std::getline(in, path);) {
      auto f = MappedFile::open(path);
      if (!f.ok()) continue;
      for (std::size_t i = 0; i < f->size(); i += 4096) sink += f->bytes()[i];
      out.total_bytes += f->size();
      out.paths.push_back(path);
      out.files.push_back(std::move(f).value());
    }
    benchmark::DoNotOptimize(sink);
    if (out.files.empty()) {
      std::fprintf(stderr, "no readable files in %s\n", list);
      std::exit(2);
    }
    return out;
  }();
  return m;
}

}  // namespace hashsieve::bench
