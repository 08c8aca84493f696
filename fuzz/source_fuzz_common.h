// Shared harness of the source-reader fuzz targets: the input is written to a
// scratch file (the readers read files) and read with a sink that discards
// rows. Reading must never crash, and the counts it reports must agree with
// what the sink saw.
#pragma once

#include <stdlib.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "hashsieve/refset/source.h"

namespace hashsieve::refset::fuzz {

class CountingSink : public SourceSink {
 public:
  Status on_product(const SourceProduct& p) override {
    ++products;
    if (p.name.size() > (1u << 20)) std::abort();
    return {};
  }
  Status on_row(const SourceRow& r) override {
    ++rows;
    // Every row carries at least one digest.
    if (!r.md5 && !r.sha1 && !r.sha256) std::abort();
    return {};
  }
  void on_warning(Warning w) override {
    ++warnings;
    if (w.message.empty()) std::abort();
  }
  std::uint64_t rows = 0, products = 0, warnings = 0;
};

// A private directory holding one input file, reused across runs.
inline const std::string& scratch_file() {
  static const std::string path = [] {
    char tmpl[] = "/tmp/hashsieve-fuzz-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) std::abort();
    return std::string(tmpl) + "/input";
  }();
  return path;
}

inline void write_input(const std::uint8_t* data, std::size_t size) {
  std::FILE* f = std::fopen(scratch_file().c_str(), "wb");
  if (!f) std::abort();
  if (size && std::fwrite(data, 1, size, f) != size) std::abort();
  std::fclose(f);
}

inline void read_and_check(SourceFormat format, const SourceOptions& options = {}) {
  CountingSink sink;
  auto stats = read_source(format, scratch_file(), sink, options);
  if (stats.ok()) {
    if (stats->rows != sink.rows || stats->products != sink.products || stats->warnings != sink.warnings) {
      std::abort();
    }
  } else if (stats.error().message().empty()) {
    std::abort();
  }
}

}  // namespace hashsieve::refset::fuzz
