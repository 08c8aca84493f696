#include "hashsieve/image/reference.h"

#include <gtest/gtest.h>

namespace hashsieve::image {
namespace {

const std::string kDigest = "sha256:" + std::string(64, 'a');

TEST(ImageReference, ParsesValidReferences) {
  struct Case {
    std::string name;
    std::string input;
    ImageReference want;
  };
  const Case cases[] = {
      {"host port repo tag", "localhost:5000/team/app:1.0", {"localhost:5000", "team/app", "1.0", ""}},
      {"default tag", "registry.example.org/app", {"registry.example.org", "app", "latest", ""}},
      {"localhost without port", "localhost/app:v1", {"localhost", "app", "v1", ""}},
      {"digest only", "127.0.0.1:5000/app@" + kDigest, {"127.0.0.1:5000", "app", "", kDigest}},
      {"tag and digest", "r.example/a/b/c:t@" + kDigest, {"r.example", "a/b/c", "t", kDigest}},
      {"separators", "r.example/a.b_c__d--e/f:T_1.x-2", {"r.example", "a.b_c__d--e/f", "T_1.x-2", ""}},
      {"ipv6", "[::1]:5000/app:1", {"[::1]:5000", "app", "1", ""}},
      {"tag of 128", "r.example/app:" + std::string(128, 'x'), {"r.example", "app", std::string(128, 'x'), ""}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    auto got = ImageReference::parse(c.input);
    ASSERT_TRUE(got.ok()) << got.error().message();
    EXPECT_EQ(*got, c.want);
  }
}

TEST(ImageReference, RejectsInvalidReferences) {
  struct Case {
    std::string name;
    std::string input;
    ErrorCode code;
    std::string message_part;
  };
  const Case cases[] = {
      {"empty", "", ErrorCode::invalid_argument, "empty"},
      {"no host", "app:1.0", ErrorCode::invalid_argument, "no registry host"},
      {"first component not a host", "team/app:1.0", ErrorCode::invalid_argument, "not a registry host"},
      {"uppercase repo", "r.example/App", ErrorCode::invalid_argument, "invalid repository name 'App'"},
      {"empty component", "r.example/a//b", ErrorCode::invalid_argument, "invalid repository name"},
      {"trailing separator", "r.example/a-", ErrorCode::invalid_argument, "invalid repository name"},
      {"triple underscore", "r.example/a___b", ErrorCode::invalid_argument, "invalid repository name"},
      {"bad tag char", "r.example/app:a+b", ErrorCode::invalid_argument, "invalid tag 'a+b'"},
      {"tag starts with dot", "r.example/app:.x", ErrorCode::invalid_argument, "invalid tag"},
      {"tag too long", "r.example/app:" + std::string(129, 'x'), ErrorCode::invalid_argument, "invalid tag"},
      {"empty tag", "r.example/app:", ErrorCode::invalid_argument, "invalid tag ''"},
      {"short digest", "r.example/app@sha256:abc", ErrorCode::invalid_argument, "64 lowercase hex"},
      {"uppercase digest", "r.example/app@sha256:" + std::string(64, 'A'), ErrorCode::invalid_argument, "64 lowercase"},
      {"other algorithm", "r.example/app@sha512:" + std::string(128, 'a'), ErrorCode::unsupported, "not sha256"},
      {"digest without algorithm", "r.example/app@abc", ErrorCode::invalid_argument, "no algorithm"},
      {"bad port", "r.example:50a0/app", ErrorCode::invalid_argument, "invalid registry host"},
      {"empty port", "r.example:/app", ErrorCode::invalid_argument, "invalid registry host"},
      {"bad host label", "-r.example/app", ErrorCode::invalid_argument, "invalid registry host"},
      {"too long", "r.example/" + std::string(250, 'a'), ErrorCode::invalid_argument, "255"},
      {"no repository", "r.example/", ErrorCode::invalid_argument, "invalid repository name ''"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    auto got = ImageReference::parse(c.input);
    ASSERT_FALSE(got.ok()) << got->to_string();
    EXPECT_EQ(got.error().code(), c.code);
    EXPECT_NE(got.error().message().find(c.message_part), std::string::npos) << got.error().message();
  }
}

TEST(ImageReference, RoundTripsAndNamesManifestReference) {
  auto tagged = ImageReference::parse("localhost:5000/team/app:1.0");
  ASSERT_TRUE(tagged.ok());
  EXPECT_EQ(tagged->to_string(), "localhost:5000/team/app:1.0");
  EXPECT_EQ(tagged->manifest_reference(), "1.0");
  auto pinned = ImageReference::parse("localhost:5000/team/app:1.0@" + kDigest);
  ASSERT_TRUE(pinned.ok());
  EXPECT_EQ(pinned->manifest_reference(), kDigest);
  EXPECT_EQ(pinned->to_string(), "localhost:5000/team/app:1.0@" + kDigest);
}

}  // namespace
}  // namespace hashsieve::image
