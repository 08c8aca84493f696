#include <gtest/gtest.h>
#include <sqlite3.h>

#include <cstdlib>
#include <filesystem>
#include <functional>
#include <vector>

#include "hashsieve/store/container_store.h"
#include "hashsieve/store/job_store.h"
#include "hashsieve/store/store.h"
#include "store_test_data.h"

// SQLite-specific behaviour only; the interface's postconditions are in
// store_conformance_test.cpp, which runs against every backend.

namespace hashsieve::store {
namespace {

namespace fs = std::filesystem;

using testdata::entry;
using testdata::sample_facts;
using testdata::TempDir;

TEST(SqliteStore, RejectsNewerSchemaAndCorruptKinds) {
  TempDir dir;
  const LayerKey key{"sha256:" + std::string(64, '6'), "v"};
  {
    auto store = open_sqlite_store(dir.path());
    ASSERT_TRUE(store.ok());
    ASSERT_TRUE((*store)->put_layer_facts(key, sample_facts()).ok());
  }
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((dir.path() + "/store.db").c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "UPDATE layer_files SET kind = 'socketish' WHERE seq = 1", nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  {
    auto store = open_sqlite_store(dir.path());
    ASSERT_TRUE(store.ok());
    auto got = (*store)->get_layer_facts(key);
    ASSERT_FALSE(got.ok());
    EXPECT_EQ(got.error().code(), ErrorCode::parse_error);
    EXPECT_NE(got.error().message().find("socketish"), std::string::npos);
  }
  ASSERT_EQ(sqlite3_open((dir.path() + "/store.db").c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "UPDATE meta SET value = '99' WHERE key = 'schema_version'", nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  auto store = open_sqlite_store(dir.path());
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.error().code(), ErrorCode::unsupported);
}

// A store.db written by a build before the .rodata columns (schema 1) opens,
// is migrated to schema 2 once, keeps its rows (read as having no .rodata
// digests) and then stores .rodata digests.
TEST(SqliteStore, MigratesASchemaVersion1Database) {
  TempDir dir;
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((dir.path() + "/store.db").c_str(), &db), SQLITE_OK);
  const char* v1 =
      "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
      "INSERT INTO meta VALUES('schema_version', '1');"
      "CREATE TABLE layers(id INTEGER PRIMARY KEY, diff_id TEXT NOT NULL, hasher_versions TEXT NOT NULL,"
      "  files INTEGER NOT NULL, UNIQUE(diff_id, hasher_versions));"
      "CREATE TABLE layer_files(layer_id INTEGER NOT NULL, seq INTEGER NOT NULL, path TEXT NOT NULL,"
      "  kind TEXT NOT NULL, size INTEGER NOT NULL, mode INTEGER NOT NULL, link_target TEXT NOT NULL,"
      "  md5 TEXT NOT NULL, sha1 TEXT NOT NULL, sha256 TEXT NOT NULL, crc32 TEXT NOT NULL,"
      "  sdbf TEXT NOT NULL, tlsh TEXT NOT NULL, ssdeep TEXT NOT NULL, content_keys TEXT NOT NULL,"
      "  similarity INTEGER NOT NULL, PRIMARY KEY(layer_id, seq)) WITHOUT ROWID;"
      "CREATE TABLE scans(id INTEGER PRIMARY KEY AUTOINCREMENT, reference TEXT NOT NULL,"
      "  image_digest TEXT NOT NULL, platform TEXT NOT NULL, scanned_at TEXT NOT NULL, verdict TEXT NOT NULL,"
      "  summary_json TEXT NOT NULL);"
      "INSERT INTO layers VALUES(1, 'sha256:old', 'v-old', 1);"
      "INSERT INTO layer_files VALUES(1, 0, 'usr/bin/tool', 'regular', 10, 493, '', 'a', 'b', 'c', 'd',"
      "  '', 'T1ABC', '3:a:b', '', 1);";
  ASSERT_EQ(sqlite3_exec(db, v1, nullptr, nullptr, nullptr), SQLITE_OK) << sqlite3_errmsg(db);
  sqlite3_close(db);

  for (int open = 0; open < 2; ++open) {  // the second open finds schema 2 and changes nothing
    SCOPED_TRACE(open);
    auto store = open_sqlite_store(dir.path());
    ASSERT_TRUE(store.ok()) << store.error().message();
    auto old = (*store)->get_layer_facts({"sha256:old", "v-old"});
    ASSERT_TRUE(old.ok()) << old.error().message();
    ASSERT_TRUE(old->has_value());
    ASSERT_EQ((*old)->files.size(), 1u);
    EXPECT_EQ((*old)->files[0].tlsh, "T1ABC");
    EXPECT_FALSE((*old)->files[0].rodata_size.has_value());
    EXPECT_TRUE((*old)->files[0].rodata_tlsh.empty());
  }
  auto store = open_sqlite_store(dir.path());
  ASSERT_TRUE(store.ok());
  LayerFacts fresh;
  FileFacts f = entry("usr/bin/new", FactKind::regular, 4096);
  f.rodata_size = 512;
  f.rodata_tlsh = "T1DEF";
  f.rodata_ssdeep = "3:c:d";
  fresh.files.push_back(f);
  ASSERT_TRUE((*store)->put_layer_facts({"sha256:new", "v-new"}, fresh).ok());
  auto got = (*store)->get_layer_facts({"sha256:new", "v-new"});
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_EQ(**got, fresh);

  ASSERT_EQ(sqlite3_open((dir.path() + "/store.db").c_str(), &db), SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key = 'schema_version'", -1, &st, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(st, 0)), "2");
  sqlite3_finalize(st);
  sqlite3_close(db);
}

// The image store, the job store and the container store are tables of one
// <data-dir>/store.db, each opened on its own connection: none disturbs the
// others' schema, and all of it survives a reopen.
TEST(SqliteStore, TheThreeStoresShareStoreDbAndSurviveReopen) {
  TempDir dir;
  const LayerKey key{"sha256:x", "v1"};
  const std::string digest = "sha256:" + std::string(64, 'a');
  std::int64_t job_id = 0;
  {
    auto cache = open_sqlite_store(dir.path());
    ASSERT_TRUE(cache.ok()) << cache.error().message();
    auto jobs = open_sqlite_job_store(dir.path());
    ASSERT_TRUE(jobs.ok()) << jobs.error().message();
    auto containers = open_sqlite_container_store(dir.path());
    ASSERT_TRUE(containers.ok()) << containers.error().message();
    auto job = (*jobs)->create_or_get_job({"team/app", "r", digest, JobSource::api, false});
    ASSERT_TRUE(job.ok());
    job_id = job->job.id;
    ASSERT_TRUE((*jobs)->begin_attempt(job_id).ok());
    ASSERT_TRUE((*cache)->put_layer_facts(key, sample_facts()).ok());
    ASSERT_TRUE((*containers)->put_schedule({"cccc", 1, 0, 0}).ok());
  }
  // Reopened in the other order: each finds its tables and rows.
  auto containers = open_sqlite_container_store(dir.path());
  ASSERT_TRUE(containers.ok()) << containers.error().message();
  auto jobs = open_sqlite_job_store(dir.path());
  ASSERT_TRUE(jobs.ok()) << jobs.error().message();
  auto cache = open_sqlite_store(dir.path());
  ASSERT_TRUE(cache.ok()) << cache.error().message();
  auto job = (*jobs)->get_job(job_id);
  ASSERT_TRUE(job.ok() && job->has_value());
  EXPECT_EQ((*job)->state, JobState::fetching);
  auto facts = (*cache)->get_layer_facts(key);
  ASSERT_TRUE(facts.ok() && facts->has_value());
  EXPECT_EQ(**facts, sample_facts());
  auto schedule = (*containers)->list_schedule();
  ASSERT_TRUE(schedule.ok());
  EXPECT_EQ(*schedule, (std::vector<ScheduleState>{{"cccc", 1, 0, 0}}));
  for (const auto& e : fs::directory_iterator(dir.path())) {
    EXPECT_EQ(e.path().filename().string().rfind("store.db", 0), 0u) << e.path();  // store.db, -wal, -shm
  }
}

TEST(SqliteStore, UnwritableDataDirIsAnError) {
  TempDir dir;
  const std::string file = dir.path() + "/not-a-dir";
  { std::FILE* f = std::fopen(file.c_str(), "w"); ASSERT_NE(f, nullptr); std::fclose(f); }
  struct Case {
    std::string name;
    std::function<Status(const std::string&)> open;
    std::string want_label;
  };
  const std::vector<Case> cases = {
      {"image store", [](const std::string& d) -> Status {
         auto s = open_sqlite_store(d);
         return s.ok() ? Status() : Status(std::move(s).error());
       }, "store: "},
      {"job store", [](const std::string& d) -> Status {
         auto s = open_sqlite_job_store(d);
         return s.ok() ? Status() : Status(std::move(s).error());
       }, "job store: "},
      {"container store", [](const std::string& d) -> Status {
         auto s = open_sqlite_container_store(d);
         return s.ok() ? Status() : Status(std::move(s).error());
       }, "container store: "},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    for (const std::string& where : {file + "/sub", std::string("/proc/hashsieve-no-such-dir")}) {
      SCOPED_TRACE(where);
      auto st = c.open(where);
      ASSERT_FALSE(st.ok());
      EXPECT_EQ(st.error().code(), ErrorCode::io_error);
      EXPECT_EQ(st.error().message().rfind(c.want_label, 0), 0u) << st.error().message();
    }
  }
}

}  // namespace
}  // namespace hashsieve::store
