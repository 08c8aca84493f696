#include "../base64.h"

#include <gtest/gtest.h>

namespace hashsieve::digest {
namespace {

TEST(Base64, Rfc4648Vectors) {
  struct Case { std::string plain, encoded; };
  const Case cases[] = {{"", ""}, {"f", "Zg=="}, {"fo", "Zm8="}, {"foo", "Zm9v"},
                        {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"}};
  for (const auto& c : cases) {
    SCOPED_TRACE(c.plain);
    std::string enc;
    base64_append({reinterpret_cast<const std::uint8_t*>(c.plain.data()), c.plain.size()}, enc);
    EXPECT_EQ(enc, c.encoded);
    std::vector<std::uint8_t> dec;
    ASSERT_TRUE(base64_decode_append(c.encoded, dec));
    EXPECT_EQ(std::string(dec.begin(), dec.end()), c.plain);
  }
}

TEST(Base64, RejectsMalformedText) {
  for (const char* bad : {"Zg=", "Z===", "Zg==Zg==", "Zm9*", "Zm=v", "====", "Zg=a"}) {
    SCOPED_TRACE(bad);
    std::vector<std::uint8_t> out;
    EXPECT_FALSE(base64_decode_append(bad, out));
  }
}

}  // namespace
}  // namespace hashsieve::digest
