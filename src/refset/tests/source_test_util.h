// Helpers for the source reader tests: a scratch directory, a sink that
// records every event as one line of text (so expectations read like the
// golden files), and file writers.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "hashsieve/refset/source.h"

namespace hashsieve::refset::testing {

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "hashsieve-source-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) ADD_FAILURE() << "mkdtemp failed";
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  std::string file(const std::string& name) const { return (path_ / name).string(); }
  std::string write(const std::string& name, std::string_view bytes) const {
    const std::string p = file(name);
    std::ofstream out(p, std::ios::binary);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    return p;
  }

 private:
  std::filesystem::path path_;
};

inline std::string read_text(const std::string& path) {
  std::error_code ec;
  std::string out(std::filesystem::file_size(path, ec), '\0');
  if (ec) return {};
  std::ifstream in(path, std::ios::binary);
  in.read(out.data(), static_cast<std::streamsize>(out.size()));
  return out;
}

// Escapes a name so a golden line stays one line and shows every byte.
inline std::string show(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

inline std::string describe(const SourceRow& r) {
  std::string s = "row";
  if (r.md5) s += " md5=" + r.md5->hex();
  if (r.sha1) s += " sha1=" + r.sha1->hex();
  if (r.sha256) s += " sha256=" + r.sha256->hex();
  if (r.crc32) s += " crc32=" + r.crc32->hex();
  if (r.size) s += " size=" + std::to_string(*r.size);
  if (r.product_id >= 0) s += " product=" + std::to_string(r.product_id);
  if (r.class_override) s += " class=" + std::string(to_string(*r.class_override));
  if (!r.special_code.empty()) s += " special=" + r.special_code;
  s += " name=" + show(r.name);
  return s;
}

inline std::string describe(const SourceProduct& p) {
  std::string s = "product " + std::to_string(p.id) + " " + show(p.name) + " " + show(p.version) + " [";
  for (std::size_t i = 0; i < p.categories.size(); ++i) {
    if (i) s += ',';
    s += show(p.categories[i]);
  }
  s += "]";
  if (!p.suspicious_category.empty()) {
    s += " suspicious=" + show(p.suspicious_category) + "/" + show(p.suspicious_pattern);
  }
  return s;
}

// Records every event, in order, as one line.
class RecordingSink : public SourceSink {
 public:
  Status on_product(const SourceProduct& p) override {
    events.push_back(describe(p));
    ++products;
    return {};
  }
  Status on_row(const SourceRow& r) override {
    if (fail_at_row != 0 && rows + 1 == fail_at_row) {
      return Error(ErrorCode::limit_exceeded, "sink is full");
    }
    events.push_back(describe(r));
    ++rows;
    return {};
  }
  void on_warning(Warning w) override {
    events.push_back("warning " + w.message);
    ++warnings;
  }

  std::vector<std::string> events;
  std::uint64_t rows = 0, products = 0, warnings = 0;
  std::uint64_t fail_at_row = 0;  // 1-based row whose on_row fails; 0 = never
};

inline std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) out.push_back(line);
  }
  return out;
}

// Golden files: tests/data/refset/<name>; '#' lines are comments.
inline std::vector<std::string> golden(const std::string& name) {
  std::vector<std::string> out;
  for (auto& l : lines_of(read_text(std::string(HASHSIEVE_TEST_DATA) + "/refset/" + name))) {
    if (l[0] != '#') out.push_back(l);
  }
  return out;
}

inline std::string fixture(const std::string& name) {
  return std::string(HASHSIEVE_TEST_DATA) + "/refset/" + name;
}

// Compares event lists line by line, so a failure names the first difference.
inline void expect_events(const std::vector<std::string>& got, const std::vector<std::string>& want) {
  for (std::size_t i = 0; i < std::max(got.size(), want.size()); ++i) {
    EXPECT_EQ(i < got.size() ? got[i] : "<none>", i < want.size() ? want[i] : "<none>") << "event " << i;
  }
}

}  // namespace hashsieve::refset::testing
