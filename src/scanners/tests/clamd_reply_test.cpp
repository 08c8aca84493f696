#include "hashsieve/scanners/clamd_reply.h"

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

namespace hashsieve::scanners {
namespace {

using namespace std::string_literals;

struct ReplyCase {
  std::string name;
  std::string reply;
  std::optional<std::vector<std::string>> want;  // nullopt: an error
  ErrorCode want_code = ErrorCode::parse_error;
  std::string want_message_part;
};

TEST(ClamdReply, ScanReplies) {
  const std::vector<ReplyCase> cases = {
      {"clean", "stream: OK\0"s, std::vector<std::string>{}, ErrorCode::parse_error, ""},
      {"clean, newline form", "stream: OK\n", std::vector<std::string>{}, ErrorCode::parse_error, ""},
      {"found", "stream: Win.Test.EICAR_HDB-1 FOUND\0"s, std::vector<std::string>{"Win.Test.EICAR_HDB-1"}, ErrorCode::parse_error, ""},
      {"found without terminator", "stream: Eicar.UNOFFICIAL FOUND", std::vector<std::string>{"Eicar.UNOFFICIAL"}, ErrorCode::parse_error, ""},
      {"all matches", "stream: A FOUND\0stream: B FOUND\0stream: OK\0"s, std::vector<std::string>{"A", "B"}, ErrorCode::parse_error, ""},
      {"size limit", "INSTREAM size limit exceeded. ERROR\0"s, std::nullopt, ErrorCode::limit_exceeded,
       "size limit exceeded"},
      {"stream error", "stream: Can't allocate memory ERROR\0"s, std::nullopt, ErrorCode::io_error,
       "Can't allocate memory"},
      {"empty", "", std::nullopt, ErrorCode::parse_error, "empty reply"},
      {"only terminators", "\0\0\n"s, std::nullopt, ErrorCode::parse_error, "empty reply"},
      {"unknown line", "PONG\0"s, std::nullopt, ErrorCode::parse_error, "\"PONG\""},
      {"no verdict", "stream: maybe\0"s, std::nullopt, ErrorCode::parse_error, "stream: maybe"},
      {"empty name", "stream:  FOUND\0"s, std::nullopt, ErrorCode::parse_error, "malformed signature name"},
      {"name with a space", "stream: a b FOUND\0"s, std::nullopt, ErrorCode::parse_error, "malformed"},
      {"binary garbage is escaped", "\x01\xff"s, std::nullopt, ErrorCode::parse_error, "\\x01\\xff"},
  };
  for (const ReplyCase& c : cases) {
    SCOPED_TRACE(c.name);
    auto r = parse_clamd_scan_reply(c.reply);
    if (c.want) {
      ASSERT_TRUE(r.ok()) << r.error().message();
      EXPECT_EQ(*r, *c.want);
    } else {
      ASSERT_FALSE(r.ok());
      EXPECT_EQ(r.error().code(), c.want_code);
      EXPECT_NE(r.error().message().find(c.want_message_part), std::string::npos) << r.error().message();
    }
  }
}

TEST(ClamdReply, LongGarbageIsCutInTheMessage) {
  auto r = parse_clamd_scan_reply(std::string(10000, 'x'));
  ASSERT_FALSE(r.ok());
  EXPECT_LT(r.error().message().size(), 300u);
  EXPECT_NE(r.error().message().find("..."), std::string::npos);
}

struct VersionCase {
  std::string name;
  std::string reply;
  std::optional<ClamdVersion> want;
};

TEST(ClamdReply, Versions) {
  const std::vector<VersionCase> cases = {
      {"official database", "ClamAV 1.4.6/27000/Sun Nov 22 09:21:32 2026\0"s,
       ClamdVersion{"1.4.6", "27000/Sun Nov 22 09:21:32 2026"}},
      {"no official database", "ClamAV 1.4.6\0"s, ClamdVersion{"1.4.6", ""}},
      {"newline form", "ClamAV 1.0.0/1/x\n", ClamdVersion{"1.0.0", "1/x"}},
      {"not clamav", "Redis 7\0"s, std::nullopt},
      {"prefix only", "ClamAV \0"s, std::nullopt},
      {"two lines", "ClamAV 1.4.6\0ClamAV 1.4.6\0"s, std::nullopt},
      {"empty", "", std::nullopt},
  };
  for (const VersionCase& c : cases) {
    SCOPED_TRACE(c.name);
    auto r = parse_clamd_version(c.reply);
    if (c.want) {
      ASSERT_TRUE(r.ok()) << r.error().message();
      EXPECT_EQ(r->engine, c.want->engine);
      EXPECT_EQ(r->database, c.want->database);
    } else {
      ASSERT_FALSE(r.ok());
      EXPECT_EQ(r.error().code(), ErrorCode::parse_error);
    }
  }
}

}  // namespace
}  // namespace hashsieve::scanners
