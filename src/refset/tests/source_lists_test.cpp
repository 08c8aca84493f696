// ClamAV, VirusShare and hash-list readers against the fixtures in
// tests/data/refset/{clamav,virusshare,hashlist} and their golden event
// lists (written by hand), plus generated variants.
#include <filesystem>

#include "source_test_util.h"

namespace hashsieve::refset {
namespace {

using testing::fixture;
using testing::golden;
using testing::read_text;
using testing::RecordingSink;
using testing::TempDir;

TEST(ListSources, FixturesMatchGoldenEvents) {
  struct Case {
    SourceFormat format;
    const char* file;
  };
  const Case cases[] = {
      {SourceFormat::clamav, "clamav/main.hdb"},
      {SourceFormat::clamav, "clamav/main.hsb"},
      {SourceFormat::virusshare, "virusshare/VirusShare_00000.md5"},
      {SourceFormat::hashlist, "hashlist/SHA256SUMS"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.file);
    RecordingSink sink;
    auto stats = read_source(c.format, fixture(c.file), sink);
    ASSERT_TRUE(stats.ok()) << stats.error().message();
    testing::expect_events(sink.events, golden(std::string(c.file) + ".expected"));
    EXPECT_EQ(stats->rows, sink.rows);
    EXPECT_EQ(stats->warnings, sink.warnings);
    EXPECT_EQ(stats->products, 0u);
    EXPECT_EQ(stats->bytes_read, std::filesystem::file_size(fixture(c.file)));
  }
}

// One digest in every hash-list spelling gives the same row.
TEST(ListSources, HashListFormsAgree) {
  const std::string sha256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";  // of ""
  const std::string sha1 = "da39a3ee5e6b4b0d3255bfef95601890afd80709";
  const std::string md5 = "d41d8cd98f00b204e9800998ecf8427e";
  auto upper = [](std::string s) {
    for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return s;
  };
  struct Case {
    const char* label;
    std::string line;
    std::string want;
  };
  const Case cases[] = {
      {"sha256sum text", sha256 + "  empty.txt", "row sha256=" + sha256 + " name=\"empty.txt\""},
      {"sha256sum binary", sha256 + " *empty.txt", "row sha256=" + sha256 + " name=\"empty.txt\""},
      {"upper-case hex", upper(sha256) + "  empty.txt", "row sha256=" + sha256 + " name=\"empty.txt\""},
      {"sha1sum", sha1 + "  empty.txt", "row sha1=" + sha1 + " name=\"empty.txt\""},
      {"md5sum", md5 + "  empty.txt", "row md5=" + md5 + " name=\"empty.txt\""},
      {"escaped name", "\\" + sha256 + "  a\\\\b\\nc", "row sha256=" + sha256 + " name=\"a\\\\b\\nc\""},
      {"BSD tag", "SHA256 (empty.txt) = " + sha256, "row sha256=" + sha256 + " name=\"empty.txt\""},
      {"BSD tag SHA1", "SHA1 (empty.txt) = " + sha1, "row sha1=" + sha1 + " name=\"empty.txt\""},
      {"BSD tag MD5", "MD5 (empty.txt) = " + md5, "row md5=" + md5 + " name=\"empty.txt\""},
      {"BSD tag, escaped", "\\SHA256 (a\\nb) = " + sha256, "row sha256=" + sha256 + " name=\"a\\nb\""},
      {"name with trailing blanks", sha256 + "  x  ", "row sha256=" + sha256 + " name=\"x  \""},
      {"CR LF", sha256 + "  empty.txt\r", "row sha256=" + sha256 + " name=\"empty.txt\""},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.label);
    TempDir dir;
    RecordingSink sink;
    auto stats = read_source(SourceFormat::hashlist, dir.write("SUMS", c.line + "\n"), sink);
    ASSERT_TRUE(stats.ok()) << stats.error().message();
    testing::expect_events(sink.events, {c.want});
  }
}

TEST(ListSources, ClamAvStarSizeNeedsLevel73) {
  const std::string md5 = "44d88612fea8a8f36de82e1278abb02f";
  struct Case {
    std::string line;
    bool accepted;
  };
  const Case cases[] = {
      {md5 + ":*:Eicar:73", true},   {md5 + ":*:Eicar:74", true},  {md5 + ":*:Eicar:73:255", true},
      {md5 + ":*:Eicar:72", false},  {md5 + ":*:Eicar", false},    {md5 + ":*:Eicar:x", false},
      {md5 + ":68:Eicar", true},     {md5 + ":68:Eicar:1", true},  {md5 + ":-1:Eicar", false},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.line);
    TempDir dir;
    RecordingSink sink;
    // A good line first so that a rejected one is a warning, not a wrong-format error.
    auto stats = read_source(SourceFormat::clamav, dir.write("x.hdb", md5 + ":68:First\n" + c.line + "\n"), sink);
    ASSERT_TRUE(stats.ok()) << stats.error().message();
    EXPECT_EQ(stats->rows, c.accepted ? 2u : 1u);
    EXPECT_EQ(stats->warnings, c.accepted ? 0u : 1u);
    if (!c.accepted) {
      EXPECT_EQ(sink.events.back().rfind("warning line 2: ", 0), 0u) << sink.events.back();
    }
  }
}

}  // namespace
}  // namespace hashsieve::refset
