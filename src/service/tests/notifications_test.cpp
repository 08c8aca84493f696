#include "hashsieve/service/notifications.h"

#include <gtest/gtest.h>

namespace hashsieve::service {
namespace {

const std::string kDigestA = "sha256:" + std::string(64, 'a');
const std::string kDigestB = "sha256:" + std::string(64, 'b');

std::string event(const std::string& action, const std::string& media_type, const std::string& repo,
                  const std::string& digest, const std::string& tag = "") {
  std::string t = R"({"mediaType":")" + media_type + R"(","size":10,"digest":")" + digest + R"(","repository":")" +
                  repo + "\"";
  if (!tag.empty()) t += R"(,"tag":")" + tag + "\"";
  t += "}";
  return R"({"id":"e1","timestamp":"2024-05-01T12:00:00.123456789+02:00","action":")" + action + R"(","target":)" + t +
         R"(,"request":{"method":"PUT"},"actor":{},"source":{"addr":"r:5000"}})";
}

std::string envelope(const std::vector<std::string>& events) {
  std::string out = R"({"events":[)";
  for (std::size_t i = 0; i < events.size(); ++i) out += (i ? "," : "") + events[i];
  return out + "]}";
}

constexpr const char* kOciManifest = "application/vnd.oci.image.manifest.v1+json";

TEST(NotificationsTest, ActsOnlyOnManifestPushes) {
  struct Case {
    std::string name;
    std::string body;
    std::vector<ManifestPush> want;
    std::uint64_t ignored;
  };
  const std::vector<Case> cases = {
      {"oci manifest push with tag",
       envelope({event("push", kOciManifest, "team/app", kDigestA, "1.0")}),
       {{"team/app", kDigestA, "1.0", "e1"}},
       0},
      {"docker manifest push by digest",
       envelope({event("push", "application/vnd.docker.distribution.manifest.v2+json", "app", kDigestA)}),
       {{"app", kDigestA, "", "e1"}},
       0},
      {"index push", envelope({event("push", "application/vnd.oci.image.index.v1+json", "app", kDigestA, "x")}),
       {{"app", kDigestA, "x", "e1"}},
       0},
      {"pull of a manifest (our own fetch) is ignored", envelope({event("pull", kOciManifest, "app", kDigestA)}), {}, 1},
      {"blob push is ignored", envelope({event("push", "application/octet-stream", "app", kDigestA)}), {}, 1},
      {"delete is ignored", envelope({event("delete", kOciManifest, "app", kDigestA)}), {}, 1},
      {"event without target is ignored", R"({"events":[{"action":"delete"}]})", {}, 1},
      {"duplicates in one envelope collapse",
       envelope({event("push", kOciManifest, "app", kDigestA, "1"), event("push", kOciManifest, "app", kDigestA, "2"),
                 event("push", kOciManifest, "other", kDigestA, "1"), event("push", kOciManifest, "app", kDigestB)}),
       {{"app", kDigestA, "1", "e1"}, {"other", kDigestA, "1", "e1"}, {"app", kDigestB, "", "e1"}},
       0},
      {"empty events", R"({"events":[]})", {}, 0},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    auto r = parse_envelope(c.body);
    ASSERT_TRUE(r.ok()) << r.error().message();
    EXPECT_EQ(r->pushes, c.want);
    EXPECT_EQ(r->ignored, c.ignored);
  }
}

TEST(NotificationsTest, MalformedEnvelopesAreRefused) {
  struct Case {
    std::string name;
    std::string body;
    std::string want;
  };
  const std::vector<Case> cases = {
      {"not json", "{events:", "not valid JSON"},
      {"empty", "", "not valid JSON"},
      {"array", "[]", "not a JSON object"},
      {"no events", R"({"event":[]})", "no 'events' array"},
      {"events not array", R"({"events":{}})", "no 'events' array"},
      {"event not object", R"({"events":[1]})", "event 0: not an object"},
      {"bad digest", envelope({event("push", kOciManifest, "app", "sha256:xyz")}), "invalid digest"},
      {"bad repository", envelope({event("push", kOciManifest, "App/../x", kDigestA)}), "invalid repository"},
      {"bad tag", envelope({event("push", kOciManifest, "app", kDigestA, "-bad tag")}), "invalid tag"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    auto r = parse_envelope(c.body);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code(), ErrorCode::parse_error);
    EXPECT_NE(r.error().message().find(c.want), std::string::npos) << r.error().message();
  }
}

TEST(NotificationsTest, ContentTypes) {
  struct Case {
    std::string type;
    bool want;
  };
  for (const auto& c : std::vector<Case>{{"application/vnd.docker.distribution.events.v1+json", true},
                                         {"application/vnd.docker.distribution.events.v2+json", true},
                                         {"application/json", true},
                                         {"Application/JSON; charset=utf-8", true},
                                         {"text/plain", false},
                                         {"", false}}) {
    SCOPED_TRACE(c.type);
    EXPECT_EQ(is_envelope_content_type(c.type), c.want);
  }
}

TEST(NotificationsTest, ConstantTimeEquals) {
  struct Case {
    std::string a, b;
    bool want;
  };
  for (const auto& c : std::vector<Case>{{"secret", "secret", true},
                                         {"secret", "secreT", false},
                                         {"secret", "secret2", false},
                                         {"secret", "", false},
                                         {"", "", true},
                                         {"Bearer x", "Bearer y", false}}) {
    SCOPED_TRACE(c.a + " vs " + c.b);
    EXPECT_EQ(constant_time_equals(c.a, c.b), c.want);
  }
}

}  // namespace
}  // namespace hashsieve::service
