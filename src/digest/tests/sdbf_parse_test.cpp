// Parsing the SDBF text form (spec section 7) against the sdhash 3.4 files.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "../base64.h"
#include "hashsieve/digest/sdbf.h"

namespace hashsieve::digest {
namespace {

const std::string kData = HASHSIEVE_TEST_DATA "/sdhash/";

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << path;
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string cur;
  for (const char c : s) {
    if (c == sep) {
      out.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  out.push_back(cur);
  return out;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

std::vector<std::uint8_t> filter_bytes_of(const Sdbf& d) {
  std::vector<std::uint8_t> out;
  for (std::size_t i = 0; i < d.filter_count(); ++i) {
    const auto f = d.filter_bytes(i);
    out.insert(out.end(), f.begin(), f.end());
  }
  return out;
}

// Checks a parsed digest against an independent field split of its line
// (valid for the reference files, whose names contain no ':').
void check_against_fields(const Sdbf& d, const std::string& line) {
  const auto f = split(line, ':');
  ASSERT_GE(f.size(), 13u);
  EXPECT_EQ(d.kind(), f[0] == "sdbf" ? SdbfKind::stream : SdbfKind::block);
  EXPECT_EQ(d.name(), f[3]);
  EXPECT_EQ(d.name().size(), std::stoul(f[2]));
  EXPECT_EQ(d.input_size(), std::stoull(f[4]));
  EXPECT_EQ(d.filter_count(), std::stoul(f[10]));
  std::vector<std::uint8_t> want;
  if (d.kind() == SdbfKind::stream) {
    ASSERT_EQ(f.size(), 13u);
    EXPECT_EQ(d.last_count(), std::stoul(f[11]));
    ASSERT_TRUE(base64_decode_append(f[12], want));
    for (std::size_t i = 0; i + 1 < d.filter_count(); ++i) EXPECT_EQ(d.element_count(i), kSdbfStreamMaxElements);
  } else {
    ASSERT_EQ(f.size(), 12 + 2 * d.filter_count());
    EXPECT_EQ(d.block_size(), std::stoul(f[11]));
    for (std::size_t i = 0; i < d.filter_count(); ++i) {
      EXPECT_EQ(d.element_count(i), std::stoul(f[12 + 2 * i], nullptr, 16));
      ASSERT_TRUE(base64_decode_append(f[13 + 2 * i], want));
    }
  }
  EXPECT_EQ(filter_bytes_of(d), want);
}

TEST(SdbfParse, EveryReferenceDigestFileParses) {
  std::size_t files = 0, digests = 0;
  for (const std::string& dir : {kData + "expected", kData + "synthetic/expected"}) {
    for (const auto& entry : std::filesystem::directory_iterator(dir)) {
      if (entry.path().extension() != ".sdbf") continue;
      SCOPED_TRACE(entry.path().string());
      const std::string text = read_text(entry.path().string());
      const auto lines = lines_of(text);
      auto parsed = parse_sdbf_lines(text);
      ASSERT_TRUE(parsed.ok()) << parsed.error().message();
      ASSERT_EQ(parsed->size(), lines.size());
      for (std::size_t i = 0; i < lines.size(); ++i) {
        SCOPED_TRACE("line " + std::to_string(i + 1));
        check_against_fields((*parsed)[i], lines[i]);
        // One line on its own, with and without its '\n', gives the same value.
        auto one = parse_sdbf(lines[i] + "\n");
        ASSERT_TRUE(one.ok()) << one.error().message();
        EXPECT_EQ(*one, (*parsed)[i]);
      }
      ++files;
      digests += lines.size();
    }
  }
  EXPECT_GE(files, 40u);
  EXPECT_GT(digests, 600u);
}

std::string first_line(const std::string& file) { return lines_of(read_text(kData + file)).at(0); }

TEST(SdbfParse, NameContainingColonsIsTakenByLength) {
  struct Case {
    const char* file;
    std::string new_name;
  };
  const Case cases[] = {
      {"expected/min_512.bin.sdbf", "img/layer:1/usr/lib/a:b.so"},
      {"expected/cat.elf.b4.sdbf", "c:"},
      {"expected/cat.elf.b16.sdbf", ":x:sdbf:03:"},
      {"expected/zeros_64k.bin.sdbf", ""},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.file);
    const std::string line = first_line(c.file);
    auto original = parse_sdbf(line);
    ASSERT_TRUE(original.ok());
    // Replace "<namelen>:<name>" (fields 2 and 3) by the new name and length.
    const auto f = split(line, ':');
    const std::string head = f[0] + ":" + f[1] + ":";
    const std::string old_part = f[2] + ":" + f[3] + ":";
    ASSERT_EQ(line.compare(0, head.size() + old_part.size(), head + old_part), 0);
    const std::string edited =
        head + std::to_string(c.new_name.size()) + ":" + c.new_name + ":" + line.substr(head.size() + old_part.size());
    auto parsed = parse_sdbf(edited);
    ASSERT_TRUE(parsed.ok()) << parsed.error().message();
    EXPECT_EQ(parsed->name(), c.new_name);
    Sdbf renamed = *original;
    renamed.set_name(c.new_name);
    EXPECT_EQ(*parsed, renamed);
  }
}

TEST(SdbfParse, MalformedLinesGiveParseErrors) {
  const std::string s = first_line("expected/min_512.bin.sdbf");        // one filter, last = 6
  const std::string two = first_line("expected/text_gpl2.txt.sdbf");    // several filters
  const std::string b = first_line("expected/half_sparse_64k.bin.b16.sdbf");  // 4 blocks
  ASSERT_EQ(s.substr(0, 26), "sdbf:03:11:min_512.bin:512");
  ASSERT_EQ(b.substr(0, 44), "sdbf-dd:03:19:half_sparse_64k.bin:65536:sha1");
  auto replace = [](std::string line, const std::string& from, const std::string& to) {
    const std::size_t at = line.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    return at == std::string::npos ? line : line.replace(at, from.size(), to);
  };
  const std::string s_tail = ":sha1:256:5:7ff:160:1:6:";
  const std::size_t payload_at = s.find(s_tail) + s_tail.size();
  // `two` with its filter count field set to 1.
  auto count_one = [](const std::string& line) {
    const std::size_t at = line.find(":160:") + 5;
    return line.substr(0, at) + "1" + line.substr(line.find(':', at));
  };
  const std::string b_first_block = ":4:16384:8c:";
  const std::size_t block_at = b.find(b_first_block) + b_first_block.size();

  struct Case {
    const char* what;
    std::string line;
    const char* message;
  };
  const Case cases[] = {
      {"empty", "", "empty line"},
      {"no fields", "hello", "wrong magic"},
      {"wrong magic", replace(s, "sdbf:", "sdbx:"), "wrong magic 'sdbx'"},
      {"magic prefix only", replace(s, "sdbf:", "sdbf-xx:"), "wrong magic"},
      {"version", replace(s, ":03:", ":04:"), "unsupported version '04'"},
      {"namelen non-numeric", replace(s, ":11:", ":1x:"), "non-numeric name length"},
      {"namelen negative", replace(s, ":11:", ":-11:"), "non-numeric name length"},
      {"namelen too short", replace(s, ":11:", ":10:"), "not followed by ':'"},
      {"namelen past end", replace(s, ":11:", ":99999:"), "runs past the end"},
      {"namelen overflow", replace(s, ":11:", ":99999999999999999999999:"), "out of range"},
      {"size non-numeric", replace(s, ":512:", ":5l2:"), "non-numeric input size"},
      {"size empty", replace(s, ":512:", "::"), "empty input size"},
      {"hash", replace(s, ":sha1:", ":md5:"), "unsupported hash 'md5'"},
      {"filter size", replace(s, ":256:", ":512:"), "filter size 512, expected 256"},
      {"hash count", replace(s, ":256:5:", ":256:4:"), "hash count 4, expected 5"},
      {"mask", replace(s, ":7ff:", ":fff:"), "bit mask"},
      {"max elem", replace(s, ":160:", ":192:"), "max elements 192, expected 160"},
      {"block max elem", replace(b, ":192:", ":160:"), "max elements 160, expected 192"},
      {"count zero", replace(s, ":160:1:6:", ":160:0:6:"), "filter count is 0"},
      {"count too big for payload", replace(s, ":160:1:6:", ":160:2:6:"), "truncated payload"},
      {"count absurd", replace(s, ":160:1:6:", ":160:4000000000:6:"), "inconsistent with a payload"},
      {"count overflow", replace(s, ":160:1:6:", ":160:99999999999999999999999:6:"), "out of range"},
      {"count too small for payload", count_one(two), "trailing garbage"},
      {"last too big", replace(s, ":160:1:6:", ":160:1:161:"), "last filter element count 161 exceeds"},
      {"last non-numeric", replace(s, ":160:1:6:", ":160:1:x:"), "non-numeric last filter element count"},
      {"base64 character", s.substr(0, payload_at + 5) + "*" + s.substr(payload_at + 6), "invalid base64"},
      {"base64 padding length", s.substr(0, s.size() - 2) + "A=", "decodes to 257 bytes"},
      {"trailing garbage", s + ":x", "trailing garbage"},
      {"carriage return", s + "\r", "trailing garbage"},
      {"second line", s + "\n" + s, "trailing garbage"},
      {"cut inside the name", s.substr(0, 20), "runs past the end"},
      {"truncated header", s.substr(0, 29), "truncated line: no ':' after hash"},
      {"truncated payload", s.substr(0, s.size() - 10), "truncated payload"},
      {"block count zero", replace(b, ":4:16384:", ":0:16384:"), "block count is 0"},
      {"block count absurd", replace(b, ":4:16384:", ":123456789:16384:"), "inconsistent with a payload"},
      {"block count too big", replace(b, ":4:16384:", ":5:16384:"), "block count 5 inconsistent"},
      {"block size zero", replace(b, ":4:16384:", ":4:0:"), "block size is 0"},
      {"block size non-numeric", replace(b, ":4:16384:", ":4:16k:"), "non-numeric block size"},
      {"block element count hex", b.substr(0, block_at - 3) + "zz" + b.substr(block_at - 1), "not hexadecimal"},
      {"block element count max", b.substr(0, block_at - 3) + "c1" + b.substr(block_at - 1), "193 exceeds the maximum 192"},
      {"block element count empty", b.substr(0, block_at - 3) + b.substr(block_at - 1), "element count is empty"},
      {"block base64 character", b.substr(0, block_at + 5) + "*" + b.substr(block_at + 6), "invalid base64 in block 0"},
      {"block base64 colon", b.substr(0, block_at + 5) + ":" + b.substr(block_at + 6), "invalid base64 in block 0"},
      {"block base64 short", b.substr(0, block_at + 300) + b.substr(block_at + 344), "block count 4 inconsistent"},
      {"block truncated", b.substr(0, b.size() - 2), "truncated line: block 3 filter has 342 of 344"},
      {"block separator", b.substr(0, block_at + 344) + "-" + b.substr(block_at + 345), "garbage after block 0"},
      {"block trailing garbage", b + ":", "trailing garbage"},
      {"block extra block", b + b.substr(block_at - 4), "trailing garbage"},
      {"block base64 padding", b.substr(0, block_at + 342) + "A=" + b.substr(block_at + 344), "decodes to 257 bytes"},
      {"binary", std::string("sdbf\0:03", 8), "wrong magic"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    auto r = parse_sdbf(c.line);
    ASSERT_FALSE(r.ok()) << "accepted: " << c.line.substr(0, 80);
    EXPECT_EQ(r.error().code(), ErrorCode::parse_error);
    EXPECT_NE(r.error().message().find(c.message), std::string::npos)
        << "message: " << r.error().message() << "\nwanted: " << c.message;
  }
}

TEST(SdbfParse, LinesStopAtFirstEmptyLineAndNameTheFailingLine) {
  const std::string a = first_line("expected/min_512.bin.sdbf");
  const std::string b = first_line("expected/cat.elf.b4.sdbf");
  struct Case {
    const char* what;
    std::string text;
    std::size_t digests;  // when ok
    const char* error;    // substring, or nullptr for success
  };
  const Case cases[] = {
      {"empty text", "", 0, nullptr},
      {"only newline", "\n", 0, nullptr},
      {"one line", a + "\n", 1, nullptr},
      {"final line without newline", a + "\n" + b, 2, nullptr},
      {"stops at empty line", a + "\n\n" + "garbage\n", 1, nullptr},
      {"empty first line", "\n" + a + "\n", 0, nullptr},
      {"error names line 2", a + "\nsdbf:03:bad\n" + b + "\n", 0, "line 2: "},
      {"error names line 3", a + "\n" + b + "\n" + a.substr(0, 100) + "\n", 0, "line 3: truncated"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    auto r = parse_sdbf_lines(c.text);
    if (c.error == nullptr) {
      ASSERT_TRUE(r.ok()) << r.error().message();
      EXPECT_EQ(r->size(), c.digests);
    } else {
      ASSERT_FALSE(r.ok());
      EXPECT_EQ(r.error().code(), ErrorCode::parse_error);
      EXPECT_NE(r.error().message().find(c.error), std::string::npos) << r.error().message();
    }
  }
}

}  // namespace
}  // namespace hashsieve::digest
