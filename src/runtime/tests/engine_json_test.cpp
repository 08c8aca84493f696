#include "hashsieve/runtime/engine_json.h"

#include <gtest/gtest.h>

namespace hashsieve::runtime {
namespace {

TEST(ParseChanges, AcceptsTheApiShapesAndRejectsBadOnes) {
  struct Case {
    std::string name, input;
    bool ok;
    std::vector<Change> want;
  };
  const std::vector<Case> cases = {
      {"api example", R"([{"Path":"/dev","Kind":0},{"Path":"/dev/kmsg","Kind":1},{"Path":"/test","Kind":2}])", true,
       {{"/dev", ChangeKind::modified}, {"/dev/kmsg", ChangeKind::added}, {"/test", ChangeKind::deleted}}},
      {"null is no changes", "null", true, {}},
      {"empty", "[]", true, {}},
      {"extra fields ignored", R"([{"Path":"/a","Kind":1,"parent":""}])", true, {{"/a", ChangeKind::added}}},
      {"not json", "[{", false, {}},
      {"object", "{}", false, {}},
      {"relative path", R"([{"Path":"a","Kind":1}])", false, {}},
      {"kind out of range", R"([{"Path":"/a","Kind":3}])", false, {}},
      {"kind a string", R"([{"Path":"/a","Kind":"1"}])", false, {}},
      {"missing path", R"([{"Kind":1}])", false, {}},
      {"item not object", R"([1])", false, {}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    auto got = parse_changes(c.input);
    ASSERT_EQ(got.ok(), c.ok) << (got.ok() ? "" : got.error().message());
    if (c.ok) {
      EXPECT_EQ(*got, c.want);
    } else {
      EXPECT_EQ(got.error().code(), ErrorCode::parse_error);
    }
  }
}

TEST(ParseContainerList, ReadsIdsNamesAndImages) {
  auto got = parse_container_list(
      R"([{"Id":"abc123","Names":["/web"],"Image":"busybox:1","ImageID":"sha256:ff","State":"running","Labels":{}},
          {"Id":"def456","Names":null,"Image":"x","ImageID":"sha256:ee","State":"running"}])");
  ASSERT_TRUE(got.ok()) << got.error().message();
  ASSERT_EQ(got->size(), 2u);
  EXPECT_EQ((*got)[0].id, "abc123");
  EXPECT_EQ((*got)[0].name, "web");
  EXPECT_EQ((*got)[0].image, "busybox:1");
  EXPECT_EQ((*got)[0].image_id, "sha256:ff");
  EXPECT_EQ((*got)[1].name, "");
  struct Case {
    std::string name, input;
  };
  const Case bad[] = {{"not array", "{}"},
                      {"no id", R"([{"Names":["/a"]}])"},
                      {"id with slash", R"([{"Id":"../x"}])"},
                      {"names not array", R"([{"Id":"a","Names":"x"}])"},
                      {"image not string", R"([{"Id":"a","Image":1}])"}};
  for (const auto& c : bad) {
    SCOPED_TRACE(c.name);
    auto r = parse_container_list(c.input);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code(), ErrorCode::parse_error);
  }
}

TEST(ParseContainerInspect, ReadsStateAndImage) {
  auto got = parse_container_inspect(
      R"({"Id":"abc","Name":"/web","Image":"sha256:ff","Config":{"Image":"busybox:1"},"State":{"Running":true,"Pid":42}})");
  ASSERT_TRUE(got.ok()) << got.error().message();
  EXPECT_EQ(got->name, "web");
  EXPECT_EQ(got->image, "busybox:1");
  EXPECT_EQ(got->image_id, "sha256:ff");
  EXPECT_TRUE(got->running);
  EXPECT_EQ(got->pid, 42);
  EXPECT_FALSE(parse_container_inspect(R"({"Id":"abc","State":{"Running":"yes"}})").ok());
  EXPECT_FALSE(parse_container_inspect(R"({"Id":"abc","State":[]})").ok());
  EXPECT_FALSE(parse_container_inspect("[]").ok());
}

TEST(ParsePathStat, DecodesTheBase64Header) {
  // {"name":"x","size":5,"mode":420,"mtime":"2026-11-22T00:00:00Z","linkTarget":""}
  const std::string json = R"({"name":"x","size":5,"mode":420,"mtime":"2026-11-22T00:00:00Z","linkTarget":""})";
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  auto encode = [&](const std::string& in) {
    std::string out;
    std::size_t i = 0;
    for (; i + 2 < in.size(); i += 3) {
      const unsigned v = (static_cast<unsigned char>(in[i]) << 16) | (static_cast<unsigned char>(in[i + 1]) << 8) |
                         static_cast<unsigned char>(in[i + 2]);
      for (int s = 18; s >= 0; s -= 6) out.push_back(kAlphabet[(v >> s) & 63]);
    }
    if (i < in.size()) {
      unsigned v = static_cast<unsigned char>(in[i]) << 16;
      if (i + 1 < in.size()) v |= static_cast<unsigned char>(in[i + 1]) << 8;
      out.push_back(kAlphabet[(v >> 18) & 63]);
      out.push_back(kAlphabet[(v >> 12) & 63]);
      out.push_back(i + 1 < in.size() ? kAlphabet[(v >> 6) & 63] : '=');
      out.push_back('=');
    }
    return out;
  };
  auto s = parse_path_stat(encode(json));
  ASSERT_TRUE(s.ok()) << s.error().message();
  EXPECT_EQ(s->name, "x");
  EXPECT_EQ(s->size, 5u);
  EXPECT_TRUE(s->is_regular());
  EXPECT_EQ(s->permissions(), 0644u);
  // Podman's service names a regular file's own path as its linkTarget: the
  // mode decides, not the link target.
  auto podman = parse_path_stat(encode(
      R"({"name":"x","size":3,"mode":420,"mtime":"2026-11-23T02:37:21.585216577Z","isDir":false,"linkTarget":"/tmp/x"})"));
  ASSERT_TRUE(podman.ok()) << podman.error().message();
  EXPECT_TRUE(podman->is_regular());
  EXPECT_FALSE(podman->is_symlink());
  struct Case {
    std::string name;
    std::uint32_t mode;
    std::string type;
    bool regular;
  };
  const Case kinds[] = {{"dir", PathStat::kModeDir | 0755, "directory", false},
                        {"fifo", PathStat::kModeNamedPipe | 0644, "fifo", false},
                        {"char device", PathStat::kModeDevice | PathStat::kModeCharDevice, "character device", false},
                        {"socket", PathStat::kModeSocket, "socket", false},
                        {"symlink", PathStat::kModeSymlink | 0777, "symlink", false},
                        {"file", 0755, "regular file", true}};
  for (const auto& k : kinds) {
    SCOPED_TRACE(k.name);
    auto p = parse_path_stat(encode(R"({"name":"n","size":0,"mode":)" + std::to_string(k.mode) + "}"));
    ASSERT_TRUE(p.ok()) << p.error().message();
    EXPECT_EQ(p->type_name(), k.type);
    EXPECT_EQ(p->is_regular(), k.regular);
  }
  EXPECT_FALSE(parse_path_stat("!!!").ok());
  EXPECT_FALSE(parse_path_stat(encode(R"({"name":"n","size":-1,"mode":0})")).ok());
  EXPECT_FALSE(parse_path_stat(encode(R"({"name":"n","size":1})")).ok());
  EXPECT_FALSE(parse_path_stat(encode("[1]")).ok());
}

TEST(ParseEvent, ReadsContainerEvents) {
  auto e = parse_event(
      R"({"status":"exec_start: sh -c ls","id":"abc","Type":"container","Action":"exec_start: sh -c ls","Actor":{"ID":"abc","Attributes":{"name":"web"}},"scope":"local","time":1,"timeNano":1000})");
  ASSERT_TRUE(e.ok()) << e.error().message();
  EXPECT_EQ(e->type, "container");
  EXPECT_EQ(e->verb(), "exec_start");
  EXPECT_EQ(e->actor_id, "abc");
  EXPECT_EQ(e->time_nano, 1000);
  // Podman's service: an exec is "exec", with no command appended.
  auto podman = parse_event(
      R"({"status":"exec","id":"abc","from":"localhost/hsbox:it","Type":"container","Action":"exec","Actor":{"ID":"abc","Attributes":{"containerExitCode":"0","name":"t2","podId":""}},"scope":"local","time":1,"timeNano":1000})");
  ASSERT_TRUE(podman.ok()) << podman.error().message();
  EXPECT_EQ(podman->verb(), "exec");
  EXPECT_FALSE(parse_event("nope").ok());
  EXPECT_FALSE(parse_event(R"({"Type":"container","Actor":{"ID":"a/b"}})").ok());
  EXPECT_FALSE(parse_event(R"({"Type":1})").ok());
}

}  // namespace
}  // namespace hashsieve::runtime
