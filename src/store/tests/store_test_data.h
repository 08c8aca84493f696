// Test data shared by the store's test files (the conformance suite and the
// SQLite-specific tests): a temporary directory and a layer's facts that use
// every column and every entry kind.
#pragma once

#include <stdlib.h>

#include <cstdint>
#include <filesystem>
#include <string>

#include "hashsieve/store/store.h"

namespace hashsieve::store {
namespace testdata {

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "hashsieve-store-XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data());
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

inline FileFacts entry(std::string path, FactKind kind, std::uint64_t size = 0, std::string link = "") {
  FileFacts f;
  f.path = std::move(path);
  f.kind = kind;
  f.size = size;
  f.link_target = std::move(link);
  return f;
}

inline LayerFacts sample_facts() {
  LayerFacts facts;
  FileFacts bin;
  bin.path = "usr/bin/tool";
  bin.size = 4096;
  bin.mode = 0755;
  bin.md5 = std::string(32, 'a');
  bin.sha1 = std::string(40, 'b');
  bin.sha256 = std::string(64, 'c');
  bin.crc32 = "DEADBEEF";
  bin.sdbf = "sdbf:03:...\n";
  bin.tlsh = "T1ABC";
  bin.ssdeep = "3:abc:def";
  bin.content_keys = "0000002a00001000";
  bin.similarity_computed = true;
  bin.rodata_size = 1024;
  bin.rodata_sdbf = "sdbf:03:rodata...\n";
  bin.rodata_tlsh = "T1DEF";
  bin.rodata_ssdeep = "3:ro:da";
  facts.files.push_back(bin);
  // .rodata too small for SDBF and TLSH: a size and an ssdeep digest only.
  FileFacts small = bin;
  small.path = "usr/bin/small";
  small.rodata_size = 100;
  small.rodata_sdbf.clear();
  small.rodata_tlsh.clear();
  facts.files.push_back(small);
  // Similarity digests but no .rodata (not an ELF file).
  FileFacts script = bin;
  script.path = "usr/bin/script.sh";
  script.rodata_size.reset();
  script.rodata_sdbf.clear();
  script.rodata_tlsh.clear();
  script.rodata_ssdeep.clear();
  facts.files.push_back(script);
  facts.files.push_back(entry("etc", FactKind::directory));
  facts.files.push_back(entry("etc/old", FactKind::whiteout));
  facts.files.push_back(entry("var/cache", FactKind::opaque_whiteout));
  facts.files.push_back(entry("usr/bin/link", FactKind::symlink, 0, "tool"));
  facts.files.push_back(entry("dev/null", FactKind::device));
  facts.files.push_back(entry("usr/bin/hard", FactKind::hardlink, 0, "usr/bin/tool"));
  return facts;
}

}  // namespace testdata
}  // namespace hashsieve::store
