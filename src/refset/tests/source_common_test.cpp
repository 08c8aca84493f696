// What every source reader shares: format names, the suspicious-category
// matcher, file errors, wrong-format detection across all formats, progress
// and sink aborts.
#include <sqlite3.h>

#include <filesystem>

#include "source_test_util.h"

namespace hashsieve::refset {
namespace {

using testing::fixture;
using testing::read_text;
using testing::RecordingSink;
using testing::TempDir;

constexpr SourceFormat kAllFormats[] = {SourceFormat::nsrl_v3, SourceFormat::nsrl_v2, SourceFormat::clamav,
                                        SourceFormat::virusshare, SourceFormat::hashlist};

TEST(SourceFormatNames, ParseAndPrint) {
  struct Case {
    const char* text;
    std::optional<SourceFormat> want;
  };
  const Case cases[] = {
      {"nsrl-v3", SourceFormat::nsrl_v3}, {"nsrl-v2", SourceFormat::nsrl_v2},
      {"clamav", SourceFormat::clamav},   {"virusshare", SourceFormat::virusshare},
      {"hashlist", SourceFormat::hashlist}, {"NSRL-V3", SourceFormat::nsrl_v3},
      {"nsrl", std::nullopt},             {"", std::nullopt},
      {"nsrl_v3", std::nullopt},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.text);
    auto f = parse_source_format(c.text);
    ASSERT_EQ(f.ok(), c.want.has_value());
    if (c.want) {
      EXPECT_EQ(*f, *c.want);
    } else {
      EXPECT_EQ(f.error().code(), ErrorCode::invalid_argument);
    }
  }
  for (auto f : kAllFormats) EXPECT_EQ(*parse_source_format(to_string(f)), f);
}

TEST(SuspiciousCategories, DefaultAndConfiguredMatchers) {
  struct Case {
    std::string category;
    std::vector<std::string> substrings;  // empty optional: default matcher
    bool use_default;
    std::optional<std::string> want;
  };
  const Case cases[] = {
      {"Hacker Tool", {}, true, "Hacker Tool"},
      {"hacker tools", {}, true, "Hacker Tool"},
      {"Security/HACKER TOOL", {}, true, "Hacker Tool"},
      {"Steganography", {}, true, "steg"},
      {"Data Hiding (STEG)", {}, true, "steg"},
      {"Operating System", {}, true, std::nullopt},
      {"Hacker", {}, true, std::nullopt},
      {"", {}, true, std::nullopt},
      {"Keylogger", {"keylog", "sniffer"}, false, "keylog"},
      {"Hacker Tool", {"keylog"}, false, std::nullopt},
      {"Anything", {""}, false, std::nullopt},  // an empty pattern matches nothing
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.category);
    SourceOptions options;
    if (!c.use_default) options.suspicious.substrings = c.substrings;
    EXPECT_EQ(match_suspicious_category(c.category, options), c.want);
    EXPECT_EQ(is_suspicious_category(c.category, options), c.want.has_value());
  }
}

TEST(SourceFiles, MissingFileDirectoryAndEmptyFile) {
  TempDir dir;
  const std::string empty = dir.write("empty", "");
  for (auto f : kAllFormats) {
    SCOPED_TRACE(std::string(to_string(f)));
    RecordingSink sink;
    auto missing = read_source(f, dir.file("nope"), sink);
    ASSERT_FALSE(missing.ok());
    EXPECT_EQ(missing.error().code(), ErrorCode::not_found);
    auto directory = read_source(f, dir.file(""), sink);
    ASSERT_FALSE(directory.ok());
    EXPECT_EQ(directory.error().code(), ErrorCode::invalid_argument);
    auto e = read_source(f, empty, sink);
    ASSERT_FALSE(e.ok());
    EXPECT_EQ(e.error().code(), ErrorCode::parse_error);
    EXPECT_NE(e.error().message().find("empty file"), std::string::npos) << e.error().message();
    EXPECT_TRUE(sink.events.empty());
  }
}

std::string make_sqlite(const TempDir& dir) {
  const std::string p = dir.file("some.db");
  sqlite3* db = nullptr;
  EXPECT_EQ(sqlite3_open(p.c_str(), &db), SQLITE_OK);
  EXPECT_EQ(sqlite3_exec(db, "CREATE TABLE t (x); INSERT INTO t VALUES (1);", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  return p;
}

// Every fixture read as every other format is an error naming the problem,
// never a silent zero-row import (and never a row).
TEST(SourceFiles, EveryFileInTheWrongFormatIsAnError) {
  TempDir dir;
  struct Input {
    const char* label;
    std::string path;
    SourceFormat format;  // its own format, skipped when `own`
    bool own;
  };
  std::string jpeg("\xFF\xD8\xFF\xE0\0\x10JFIF\0\x01\x01\0\0\x01\0\x01\0\0", 20);
  jpeg += std::string(3000, '\x7F');
  std::string prose = "Lorem ipsum dolor sit amet,\nconsectetur adipiscing elit.\nSed do eiusmod tempor.\n";
  const Input inputs[] = {
      {"NSRL v2", fixture("nsrl_v2/NSRLFile.txt"), SourceFormat::nsrl_v2, true},
      {"ClamAV hdb", fixture("clamav/main.hdb"), SourceFormat::clamav, true},
      {"ClamAV hsb", fixture("clamav/main.hsb"), SourceFormat::clamav, true},
      {"hash list", fixture("hashlist/SHA256SUMS"), SourceFormat::hashlist, true},
      {"SQLite", make_sqlite(dir), SourceFormat::nsrl_v3, false},
      {"JPEG", dir.write("photo.jpg", jpeg), SourceFormat::hashlist, false},
      {"prose", dir.write("README", prose), SourceFormat::hashlist, false},
  };
  for (const auto& in : inputs) {
    for (auto f : kAllFormats) {
      if (in.own && f == in.format) continue;
      // (The VirusShare fixture is left out: an MD5-only list is also a
      // valid bare-hex hash list.)
      SCOPED_TRACE(std::string(in.label) + " as " + std::string(to_string(f)));
      RecordingSink sink;
      auto r = read_source(f, in.path, sink);
      ASSERT_FALSE(r.ok()) << sink.rows << " rows";
      EXPECT_EQ(r.error().code(), ErrorCode::parse_error);
      EXPECT_NE(r.error().message().find(in.path), std::string::npos) << r.error().message();
      EXPECT_EQ(sink.rows, 0u);
    }
  }
}

TEST(SourceFiles, TextProgressCountsRowsAndBytes) {
  TempDir dir;
  std::string text;
  for (int i = 0; i < 1000; ++i) {
    char line[40];
    std::snprintf(line, sizeof line, "%032x\n", i);
    text += line;
  }
  const std::string path = dir.write("VirusShare_00001.md5", text);
  std::vector<SourceProgress> seen;
  SourceOptions options;
  options.progress_every_rows = 400;
  options.progress = [&](const SourceProgress& p) { seen.push_back(p); };
  RecordingSink sink;
  auto stats = read_source(SourceFormat::virusshare, path, sink, options);
  ASSERT_TRUE(stats.ok()) << stats.error().message();
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_EQ(seen[0].rows_done, 400u);
  EXPECT_EQ(seen[1].rows_done, 800u);
  EXPECT_EQ(seen[2].rows_done, 1000u);
  // Each line is 33 bytes; the progress before row N has consumed N lines.
  EXPECT_EQ(seen[0].bytes_done, 400u * 33);
  EXPECT_EQ(seen[2].bytes_done, text.size());
  EXPECT_EQ(seen[2].bytes_total, std::optional<std::uint64_t>(text.size()));
  EXPECT_EQ(stats->bytes_read, text.size());
}

TEST(SourceFiles, SinkErrorAbortsEveryFormat) {
  struct Case {
    SourceFormat format;
    std::string file;
  };
  const Case cases[] = {
      {SourceFormat::nsrl_v2, "nsrl_v2/NSRLFile.txt"},
      {SourceFormat::clamav, "clamav/main.hdb"},
      {SourceFormat::virusshare, "virusshare/VirusShare_00000.md5"},
      {SourceFormat::hashlist, "hashlist/SHA256SUMS"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.file);
    RecordingSink sink;
    sink.fail_at_row = 2;
    auto r = read_source(c.format, fixture(c.file), sink);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code(), ErrorCode::limit_exceeded);
    EXPECT_EQ(sink.rows, 1u);
  }
}

TEST(SourceFiles, LinesAndSniffing) {
  const std::string md5 = "0123456789abcdef0123456789abcdef";
  struct Case {
    const char* label;
    std::string text;
    unsigned sniff_lines;
    bool ok;
    std::uint64_t rows, warnings;
  };
  const Case cases[] = {
      {"overlong line is one malformed line", md5 + "\n" + std::string(200000, 'a') + "\n" + md5 + "\n", 16, true, 2,
       1},
      {"no final newline", md5 + "\n" + md5, 16, true, 2, 0},
      {"only comments", "# nothing here\n#\n", 16, true, 0, 1},
      {"3 bad then good, sniff 4", "x\ny\nz\n" + md5 + "\n", 4, true, 1, 3},
      {"4 bad then good, sniff 4", "x\ny\nz\nw\n" + md5 + "\n", 4, false, 0, 0},
      {"4 bad then good, sniffing off", "x\ny\nz\nw\n" + md5 + "\n", 0, true, 1, 4},
      {"one bad line only", "x\n", 16, false, 0, 0},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.label);
    TempDir dir;
    SourceOptions options;
    options.sniff_lines = c.sniff_lines;
    RecordingSink sink;
    auto r = read_source(SourceFormat::virusshare, dir.write("list.md5", c.text), sink, options);
    ASSERT_EQ(r.ok(), c.ok) << (r.ok() ? "" : r.error().message());
    EXPECT_EQ(sink.rows, c.rows);
    EXPECT_EQ(sink.warnings, c.warnings);
    if (r.ok()) {
      EXPECT_EQ(r->rows, c.rows);
      EXPECT_EQ(r->warnings, c.warnings);
    }
  }
}

}  // namespace
}  // namespace hashsieve::refset
