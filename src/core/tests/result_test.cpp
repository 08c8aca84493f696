#include "hashsieve/core/result.h"

#include <gtest/gtest.h>

namespace hashsieve {
namespace {

Result<int> parse_positive(int v) {
  if (v <= 0) return Error(ErrorCode::invalid_argument, "not positive");
  return v;
}

TEST(Result, HoldsValueOrError) {
  auto good = parse_positive(3);
  ASSERT_TRUE(good.ok());
  EXPECT_EQ(*good, 3);
  auto bad = parse_positive(-1);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code(), ErrorCode::invalid_argument);
  EXPECT_EQ(bad.error().message(), "not positive");
}

TEST(Result, ContextFramesPrintOutermostFirst) {
  Error e(ErrorCode::parse_error, "bad base64");
  e.with_context("line 3").with_context("digests.sdbf");
  EXPECT_EQ(e.message(), "digests.sdbf: line 3: bad base64");
}

TEST(Result, VoidResult) {
  Status ok;
  EXPECT_TRUE(ok.ok());
  Status failed = Error(ErrorCode::io_error, "disk full");
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.error().code(), ErrorCode::io_error);
  EXPECT_EQ(to_string(ErrorCode::io_error), "I/O error");
}

// The identifiers API clients and stored jobs see: fixed, one per code.
TEST(Result, CodeNamesAreTheIdentifiers) {
  const std::pair<ErrorCode, std::string_view> cases[] = {
      {ErrorCode::invalid_argument, "invalid_argument"}, {ErrorCode::not_found, "not_found"},
      {ErrorCode::permission_denied, "permission_denied"}, {ErrorCode::io_error, "io_error"},
      {ErrorCode::parse_error, "parse_error"},           {ErrorCode::unsupported, "unsupported"},
      {ErrorCode::limit_exceeded, "limit_exceeded"},     {ErrorCode::integrity_error, "integrity_error"},
      {ErrorCode::unavailable, "unavailable"},           {ErrorCode::internal, "internal"},
  };
  for (const auto& [code, name] : cases) EXPECT_EQ(code_name(code), name);
}

}  // namespace
}  // namespace hashsieve
