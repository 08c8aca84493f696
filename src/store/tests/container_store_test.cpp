#include "hashsieve/store/container_store.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>

#include "hashsieve/store/store.h"

namespace hashsieve::store {
namespace {

namespace fs = std::filesystem;

class ContainerStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "hashsieve-cstore-XXXXXX").string();
    dir_ = ::mkdtemp(tmpl.data());
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string dir_;
};

ContainerRecord record(std::string id, std::string at, std::string verdict) {
  ContainerRecord r;
  r.id = std::move(id);
  r.name = "c-" + r.id.substr(0, 4);
  r.image = "busybox:test";
  r.image_id = "sha256:" + std::string(64, 'a');
  r.image_scan_id = 7;
  r.scanned_at = std::move(at);
  r.verdict = std::move(verdict);
  r.drifted_files = 3;
  r.errors = 1;
  r.result_json = R"({"id":")" + r.id + R"("})";
  return r;
}

TEST_F(ContainerStoreTest, ResultsRoundTripAndTheNewestReplaces) {
  auto s = open_sqlite_container_store(dir_);
  ASSERT_TRUE(s.ok()) << s.error().message();
  const auto a = record("aaaa1111", "2026-11-22T10:00:00Z", "unknown");
  const auto b = record("bbbb2222", "2026-11-22T11:00:00Z", "malicious");
  ASSERT_TRUE((*s)->put_container_result(a).ok());
  ASSERT_TRUE((*s)->put_container_result(b).ok());
  auto a2 = a;
  a2.scanned_at = "2026-11-22T12:00:00Z";
  a2.verdict = "modified";
  ASSERT_TRUE((*s)->put_container_result(a2).ok());
  auto list = (*s)->list_container_results(10);
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0], a2);
  EXPECT_EQ((*list)[1], b);
  auto one = (*s)->list_container_results(1);
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(one->size(), 1u);
}

TEST_F(ContainerStoreTest, GetByIdOrUniquePrefix) {
  auto s = open_sqlite_container_store(dir_);
  ASSERT_TRUE(s.ok());
  ASSERT_TRUE((*s)->put_container_result(record("abcd1111", "t1", "known")).ok());
  ASSERT_TRUE((*s)->put_container_result(record("abcd2222", "t2", "known")).ok());
  ASSERT_TRUE((*s)->put_container_result(record("ffff%_00", "t3", "known")).ok());
  struct Case {
    std::string name, query;
    bool ok;
    std::string want_id;  // "" = not found
  };
  const Case cases[] = {
      {"full id", "abcd2222", true, "abcd2222"},  {"unique prefix", "abcd1", true, "abcd1111"},
      {"ambiguous prefix", "abcd", false, ""},    {"too short", "abc", false, ""},
      {"no match", "0000", true, ""},             {"wildcards are literal", "ffff%", true, "ffff%_00"},
      {"wildcard does not match", "abc%", true, ""},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    auto got = (*s)->get_container_result(c.query);
    ASSERT_EQ(got.ok(), c.ok);
    if (!c.ok) {
      EXPECT_EQ(got.error().code(), ErrorCode::invalid_argument);
      continue;
    }
    if (c.want_id.empty()) {
      EXPECT_FALSE(got->has_value());
    } else {
      ASSERT_TRUE(got->has_value());
      EXPECT_EQ((*got)->id, c.want_id);
    }
  }
}

TEST_F(ContainerStoreTest, ScheduleSurvivesReopenAndSharesTheImageStoreFile) {
  {
    auto image_store = open_sqlite_store(dir_);
    ASSERT_TRUE(image_store.ok());
    auto s = open_sqlite_container_store(dir_);
    ASSERT_TRUE(s.ok());
    ASSERT_TRUE((*s)->put_schedule({"bbbb", 1000, 0, 0}).ok());
    ASSERT_TRUE((*s)->put_schedule({"aaaa", 2000, 2500, 2}).ok());
    ASSERT_TRUE((*s)->put_schedule({"bbbb", 3000, 0, 0}).ok());
    ASSERT_TRUE((*s)->put_container_result(record("aaaa", "t", "known")).ok());
  }
  auto s = open_sqlite_container_store(dir_);
  ASSERT_TRUE(s.ok());
  auto sched = (*s)->list_schedule();
  ASSERT_TRUE(sched.ok());
  ASSERT_EQ(sched->size(), 2u);
  EXPECT_EQ((*sched)[0], (ScheduleState{"aaaa", 2000, 2500, 2}));
  EXPECT_EQ((*sched)[1], (ScheduleState{"bbbb", 3000, 0, 0}));
  ASSERT_TRUE((*s)->remove_container("aaaa").ok());
  sched = (*s)->list_schedule();
  ASSERT_TRUE(sched.ok());
  EXPECT_EQ(sched->size(), 1u);
  auto gone = (*s)->get_container_result("aaaa");
  ASSERT_TRUE(gone.ok());
  EXPECT_FALSE(gone->has_value());
  // The image store still opens the same file.
  EXPECT_TRUE(open_sqlite_store(dir_).ok());
}

TEST_F(ContainerStoreTest, UnwritableDirectoryIsAnError) {
  auto s = open_sqlite_container_store("/proc/hashsieve-no-such-dir");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message().find("container store"), std::string::npos);
}

}  // namespace
}  // namespace hashsieve::store
