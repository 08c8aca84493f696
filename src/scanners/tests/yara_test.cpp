#include "hashsieve/scanners/yara.h"

#include <gtest/gtest.h>
#include <yara.h>
#include <sys/stat.h>

#include <algorithm>
#include <thread>

#include "scanner_test_util.h"

namespace hashsieve::scanners {
namespace {

using testing::TempDir;
using testing::bytes_of;

constexpr std::string_view kStringRules = R"(rule elf_marker : binary {
  strings:
    $a = "HASHSIEVE-MARKER"
  condition:
    $a
}
)";

constexpr std::string_view kHexRules = R"(rule hex_pattern : binary suspicious {
  strings:
    $h = { DE AD ?? EF [2-4] CA FE }
  condition:
    $h at 0 or $h
}

rule tiny_file {
  condition:
    filesize < 8
}
)";

class YaraTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_.write("rules/a_strings.yar", kStringRules);
    dir_.write("rules/b_hex.yara", kHexRules);
    dir_.write("rules/notes.txt", "not a rule file: ignored");
  }
  Result<WithWarnings<std::unique_ptr<ExternalScanner>>> open(ScanLimits limits = {}) {
    return open_yara({dir_.file("rules"), limits});
  }
  TempDir dir_;
};

std::vector<std::string> names(const std::vector<ScanFinding>& findings) {
  std::vector<std::string> out;
  for (const auto& f : findings) {
    EXPECT_EQ(f.scanner, "yara");
    out.push_back(f.signature);
  }
  std::sort(out.begin(), out.end());
  return out;
}

TEST_F(YaraTest, StringHexAndFilesizeRules) {
  auto scanner = open();
  ASSERT_TRUE(scanner.ok()) << scanner.error().message();
  EXPECT_TRUE(scanner->warnings.empty());
  struct Case {
    std::string name;
    std::string input;
    std::vector<std::string> want;
  };
  using namespace std::string_literals;
  const std::vector<Case> cases = {
      {"string in the middle", "xxxxxxxx HASHSIEVE-MARKER yyyy", {"elf_marker"}},
      {"string case differs", "xxxxxxxx hashsieve-marker yyyy", {}},
      {"hex with wildcard and jump", "prefix..\xde\xad\x00\xef\x01\x02\xca\xfe"s, {"hex_pattern"}},
      {"hex jump too long", "prefix..\xde\xad\x00\xef\x01\x02\x03\x04\x05\xca\xfe"s, {}},
      {"small file", "abc", {"tiny_file"}},
      {"small file with the hex", "\xde\xad\x00\xef\x01\x02\xca\xfe"s, {"hex_pattern"}},
      {"empty", "", {"tiny_file"}},
      {"everything", "HASHSIEVE-MARKER \xde\xad\x00\xef\x01\x02\x03\xca\xfe"s, {"elf_marker", "hex_pattern"}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    auto r = scanner->value->scan_buffer(bytes_of(c.input), c.name);
    ASSERT_TRUE(r.ok()) << r.error().message();
    EXPECT_EQ(names(*r), c.want);
  }
}

TEST_F(YaraTest, FindingsCarryTags) {
  auto scanner = open();
  ASSERT_TRUE(scanner.ok()) << scanner.error().message();
  using namespace std::string_literals;
  auto r = scanner->value->scan_buffer(bytes_of("..........\xde\xad\x00\xef\x01\x02\xca\xfe"s), "x");
  ASSERT_TRUE(r.ok()) << r.error().message();
  ASSERT_EQ(r->size(), 1u);
  EXPECT_EQ(r->front(), (ScanFinding{"yara", "hex_pattern", {"binary", "suspicious"}}));
}

TEST_F(YaraTest, ScansFilesAndRefusesWhatIsNotARegularFile) {
  auto scanner = open();
  ASSERT_TRUE(scanner.ok()) << scanner.error().message();
  auto r = scanner->value->scan_file(dir_.write("f/marked.bin", std::string(100, 'z') + "HASHSIEVE-MARKER"));
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(names(*r), std::vector<std::string>{"elf_marker"});
  // An empty file maps to no memory at all; the filesize rule still sees it.
  auto e = scanner->value->scan_file(dir_.write("f/empty", ""));
  ASSERT_TRUE(e.ok()) << e.error().message();
  EXPECT_EQ(names(*e), std::vector<std::string>{"tiny_file"});
  const std::string fifo = dir_.file("f/fifo");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  auto f = scanner->value->scan_file(fifo);
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.error().code(), ErrorCode::unsupported);
  auto d = scanner->value->scan_file("/dev/zero");
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.error().code(), ErrorCode::unsupported);
}

TEST_F(YaraTest, SizeLimit) {
  ScanLimits limits;
  limits.max_bytes = 16;
  auto scanner = open(limits);
  ASSERT_TRUE(scanner.ok()) << scanner.error().message();
  auto r = scanner->value->scan_buffer(bytes_of("HASHSIEVE-MARKER!"), "seventeen");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::limit_exceeded);
  EXPECT_EQ(r.error().message(), "seventeen: 17 bytes is over the scan limit of 16 bytes");
}

TEST_F(YaraTest, VersionsAndSignatureVersion) {
  auto scanner = open();
  ASSERT_TRUE(scanner.ok()) << scanner.error().message();
  EXPECT_EQ(scanner->value->name(), "yara");
  EXPECT_EQ(scanner->value->version(), YR_VERSION);
  const std::string sv = scanner->value->signature_version();
  EXPECT_EQ(sv.rfind("3 rules, sha256:", 0), 0u) << sv;
  EXPECT_EQ(sv.size(), std::string("3 rules, sha256:").size() + 64);

  auto same = open();
  ASSERT_TRUE(same.ok());
  EXPECT_EQ(same->value->signature_version(), sv);
  // A one-byte edit of a rule file changes the version; the ignored .txt does not.
  dir_.write("rules/notes.txt", "changed");
  EXPECT_EQ(open()->value->signature_version(), sv);
  std::string edited(kStringRules);
  edited.replace(edited.find("MARKER"), 6, "MARKEX");
  dir_.write("rules/a_strings.yar", edited);
  auto changed = open();
  ASSERT_TRUE(changed.ok()) << changed.error().message();
  EXPECT_NE(changed->value->signature_version(), sv);
}

TEST_F(YaraTest, BadRulesAreClearErrors) {
  struct Case {
    std::string name;
    std::string file;
    std::string text;
    std::string want_part;
  };
  const std::vector<Case> cases = {
      {"syntax error", "c_bad.yar", "rule ok { condition: true }\n\nrule broken {\n  strings: $a = \n}\n",
       "c_bad.yar:5: "},
      // YARA reports this at the rule's closing brace (line 4), as `yara` does.
      {"undefined string", "c_undef.yar", "rule u {\n  condition:\n    $nope\n}\n", "c_undef.yar:4: undefined string"},
      {"duplicate rule across files", "c_dup.yar", "rule tiny_file { condition: true }\n", "c_dup.yar:1: "},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const std::string path = dir_.write("rules/" + c.file, c.text);
    auto r = open();
    std::filesystem::remove(path);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code(), ErrorCode::parse_error);
    EXPECT_NE(r.error().message().find(c.want_part), std::string::npos) << r.error().message();
  }
}

TEST_F(YaraTest, BadRuleDirectories) {
  struct Case {
    std::string name;
    std::string dir;
    ErrorCode want;
  };
  std::filesystem::create_directories(dir_.file("empty"));
  const std::vector<Case> cases = {
      {"missing", dir_.file("nope"), ErrorCode::not_found},
      {"no rule files", dir_.file("empty"), ErrorCode::invalid_argument},
      {"a file, not a directory", dir_.file("rules/a_strings.yar"), ErrorCode::invalid_argument},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    auto r = open_yara({c.dir, {}});
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code(), c.want) << r.error().message();
    EXPECT_NE(r.error().message().find(c.dir), std::string::npos) << r.error().message();
  }
}

TEST_F(YaraTest, CompilerWarningsAreReturned) {
  // A string whose atoms are all wildcards/common bytes makes YARA warn that
  // it slows scanning down.
  dir_.write("rules/c_slow.yar", "rule slow {\n  strings:\n    $s = { 00 ?? 00 }\n  condition:\n    $s\n}\n");
  auto r = open();
  ASSERT_TRUE(r.ok()) << r.error().message();
  ASSERT_EQ(r->warnings.size(), 1u);
  EXPECT_NE(r->warnings[0].message.find("c_slow.yar:"), std::string::npos) << r->warnings[0].message;
}

TEST_F(YaraTest, ManyThreadsAndManyScanners) {
  std::vector<std::thread> threads;
  std::vector<int> bad(4, 0);
  auto shared = open();
  ASSERT_TRUE(shared.ok()) << shared.error().message();
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      // Threads open and drop scanners of their own (the library reference
      // count) while scanning with the shared one.
      auto own = open_yara({dir_.file("rules"), {}});
      if (!own.ok()) ++bad[t];
      for (int i = 0; i < 200; ++i) {
        const bool marked = (i + t) % 2 == 0;
        const std::string input = marked ? "....HASHSIEVE-MARKER...." : "clean input " + std::to_string(i);
        auto r = shared->value->scan_buffer(bytes_of(input), "t");
        if (!r.ok() || r->size() != (marked ? 1u : 0u)) ++bad[t];
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(bad, std::vector<int>(4, 0));
}

}  // namespace
}  // namespace hashsieve::scanners
