#include "hashsieve/refset/reference_class.h"

#include <gtest/gtest.h>

namespace hashsieve::refset {
namespace {

TEST(ReferenceClass, RoundTripsAndRejectsUnknownNames) {
  for (auto c : {ReferenceClass::known, ReferenceClass::malicious, ReferenceClass::suspicious}) {
    auto parsed = parse_reference_class(to_string(c));
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(*parsed, c);
  }
  auto bad = parse_reference_class("good");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code(), ErrorCode::invalid_argument);
}

}  // namespace
}  // namespace hashsieve::refset
