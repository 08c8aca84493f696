// NSRL RDS 2.x text reader against the fixtures in tests/data/refset/nsrl_v2*
// (real headers, CR LF, quoted names with commas and doubled quotes, a
// Latin-1 name, SpecialCode M and S, malformed lines) and their golden event
// lists.
#include <filesystem>

#include "source_test_util.h"

namespace hashsieve::refset {
namespace {

using testing::fixture;
using testing::golden;
using testing::read_text;
using testing::RecordingSink;
using testing::TempDir;

std::string replace_all(std::string_view s, std::string_view from, std::string_view to) {
  std::string out;
  for (;;) {
    const auto pos = s.find(from);
    out.append(s.substr(0, pos));
    if (pos == std::string_view::npos) return out;
    out.append(to);
    s.remove_prefix(pos + from.size());
  }
}

TEST(NsrlV2Source, FixtureMatchesGoldenEvents) {
  RecordingSink sink;
  const std::string path = fixture("nsrl_v2/NSRLFile.txt");
  auto stats = read_source(SourceFormat::nsrl_v2, path, sink);
  ASSERT_TRUE(stats.ok()) << stats.error().message();
  const auto want = golden("nsrl_v2/expected.txt");
  testing::expect_events(sink.events, want);
  EXPECT_EQ(stats->rows, sink.rows);
  EXPECT_EQ(stats->products, 4u);
  EXPECT_EQ(stats->warnings, sink.warnings);
  EXPECT_EQ(stats->bytes_read, std::filesystem::file_size(path));
}

TEST(NsrlV2Source, Pre20LayoutWithoutProductFile) {
  RecordingSink sink;
  const std::string dir = fixture("nsrl_v2_pre20");
  auto stats = read_source(SourceFormat::nsrl_v2, dir + "/NSRLFile.txt", sink);
  ASSERT_TRUE(stats.ok()) << stats.error().message();
  std::vector<std::string> want;
  for (const auto& l : golden("nsrl_v2_pre20/expected.txt")) want.push_back(replace_all(l, "@DIR@", dir));
  testing::expect_events(sink.events, want);
}

// The same content with other line ends, a trailing newline or a UTF-8 BOM
// gives the same events; a products file named by option is used.
TEST(NsrlV2Source, LineEndsBomAndProductPathOption) {
  const std::string original = read_text(fixture("nsrl_v2/NSRLFile.txt"));
  const auto want = golden("nsrl_v2/expected.txt");
  struct Case {
    const char* label;
    std::string text;
  };
  const Case cases[] = {
      {"CR LF as shipped", original},
      {"LF", replace_all(original, "\r\n", "\n")},
      {"CR LF with final newline", original + "\r\n"},
      {"UTF-8 BOM", "\xEF\xBB\xBF" + original},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.label);
    TempDir dir;
    SourceOptions options;
    options.nsrl_v2_products_path = fixture("nsrl_v2/NSRLProd.txt");
    RecordingSink sink;
    auto stats = read_source(SourceFormat::nsrl_v2, dir.write("rds_file.txt", c.text), sink, options);
    ASSERT_TRUE(stats.ok()) << stats.error().message();
    testing::expect_events(sink.events, want);
  }
}

TEST(NsrlV2Source, HeaderlessFileAssumes2xLayoutWithAWarning) {
  TempDir dir;
  dir.write("NSRLProd.txt", read_text(fixture("nsrl_v2/NSRLProd.txt")));
  const std::string line =
      "\"0000002D9D62AEBE1E0E9DB6C4C4C7C16A163D2C\",\"1D6EBB5A789ABD108FF578263E1F40F3\",\"FFFFFFFF\","
      "\"_sfx_0024._p\",4109,11063,\"358\",\"\"\n";
  RecordingSink sink;
  auto stats = read_source(SourceFormat::nsrl_v2, dir.write("NSRLFile.txt", line), sink);
  ASSERT_TRUE(stats.ok()) << stats.error().message();
  ASSERT_GE(sink.events.size(), 2u);
  EXPECT_EQ(sink.events[0].rfind("warning line 1: no header line; assuming the RDS 2.x layout", 0), 0u)
      << sink.events[0];
  EXPECT_EQ(sink.events.back(),
            "row md5=1d6ebb5a789abd108ff578263e1f40f3 sha1=0000002d9d62aebe1e0e9db6c4c4c7c16a163d2c crc32=FFFFFFFF "
            "size=4109 product=11063 name=\"_sfx_0024._p\"");
  EXPECT_EQ(stats->rows, 1u);
}

TEST(NsrlV2Source, WrongFormatsAreErrors) {
  struct Case {
    const char* label;
    std::string text;
    std::string message_part;
  };
  const std::string header = "\"SHA-1\",\"MD5\",\"CRC32\",\"FileName\",\"FileSize\",\"ProductCode\",\"OpSystemCode\",\"SpecialCode\"\n";
  std::string garbage_rows = header;
  for (int i = 0; i < 20; ++i) garbage_rows += "\"nothex\",\"nothex\",\"\",\"x\",1,1,\"1\",\"\"\n";
  const Case cases[] = {
      {"ClamAV signatures", "48c4533230e1ae1c118c741c0db19dfb:17387:test.exe\n",
       "does not look like an NSRL RDS 2.x NSRLFile.txt file: line 1 is not its header"},
      {"NSRLProd.txt given as NSRLFile.txt", read_text(fixture("nsrl_v2/NSRLProd.txt")), "line 1 is not its header"},
      {"empty", "", "empty file, expected an NSRL RDS 2.x NSRLFile.txt"},
      {"binary", std::string("\x89PNG\r\n\x1a\n\0\0\0\rIHDR", 16), "binary data"},
      {"header, then only malformed rows", garbage_rows,
       "does not look like an NSRL RDS 2.x NSRLFile.txt: the first 16 data lines are malformed (line 2: bad SHA-1 "
       "'nothex')"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.label);
    TempDir dir;
    RecordingSink sink;
    auto r = read_source(SourceFormat::nsrl_v2, dir.write("NSRLFile.txt", c.text), sink);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code(), ErrorCode::parse_error);
    EXPECT_NE(r.error().message().find(c.message_part), std::string::npos) << r.error().message();
    EXPECT_EQ(sink.rows, 0u);
  }
}

TEST(NsrlV2Source, SinkErrorAbortsTheRead) {
  RecordingSink sink;
  sink.fail_at_row = 3;
  auto r = read_source(SourceFormat::nsrl_v2, fixture("nsrl_v2/NSRLFile.txt"), sink);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::limit_exceeded);
  EXPECT_NE(r.error().message().find("sink is full"), std::string::npos);
  EXPECT_EQ(sink.rows, 2u);
}

}  // namespace
}  // namespace hashsieve::refset
