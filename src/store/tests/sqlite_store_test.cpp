#include <gtest/gtest.h>
#include <sqlite3.h>

#include <cstdlib>
#include <filesystem>

#include "hashsieve/store/store.h"

// SQLite-specific behaviour only; the interface's postconditions are in
// store_conformance_test.cpp, which runs against every backend.

namespace hashsieve::store {
namespace {

namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "hashsieve-store-XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data());
  }
  ~TempDir() { fs::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

FileFacts entry(std::string path, FactKind kind, std::uint64_t size = 0, std::string link = "") {
  FileFacts f;
  f.path = std::move(path);
  f.kind = kind;
  f.size = size;
  f.link_target = std::move(link);
  return f;
}

LayerFacts sample_facts() {
  LayerFacts facts;
  FileFacts bin;
  bin.path = "usr/bin/tool";
  bin.size = 4096;
  bin.mode = 0755;
  bin.md5 = std::string(32, 'a');
  bin.sha1 = std::string(40, 'b');
  bin.sha256 = std::string(64, 'c');
  bin.crc32 = "DEADBEEF";
  bin.sdbf = "sdbf:03:...\n";
  bin.tlsh = "T1ABC";
  bin.ssdeep = "3:abc:def";
  bin.content_keys = "0000002a00001000";
  bin.similarity_computed = true;
  facts.files.push_back(bin);
  facts.files.push_back(entry("etc", FactKind::directory));
  facts.files.push_back(entry("etc/old", FactKind::whiteout));
  facts.files.push_back(entry("var/cache", FactKind::opaque_whiteout));
  facts.files.push_back(entry("usr/bin/link", FactKind::symlink, 0, "tool"));
  return facts;
}

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

TEST(SqliteStore, UnwritableDataDirIsAnError) {
  TempDir dir;
  const std::string file = dir.path() + "/not-a-dir";
  { std::FILE* f = std::fopen(file.c_str(), "w"); ASSERT_NE(f, nullptr); std::fclose(f); }
  auto store = open_sqlite_store(file + "/sub");
  EXPECT_FALSE(store.ok());
}

}  // namespace
}  // namespace hashsieve::store
