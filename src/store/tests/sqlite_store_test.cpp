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

TEST(SqliteStore, UnwritableDataDirIsAnError) {
  TempDir dir;
  const std::string file = dir.path() + "/not-a-dir";
  { std::FILE* f = std::fopen(file.c_str(), "w"); ASSERT_NE(f, nullptr); std::fclose(f); }
  auto store = open_sqlite_store(file + "/sub");
  EXPECT_FALSE(store.ok());
}

}  // namespace
}  // namespace hashsieve::store
