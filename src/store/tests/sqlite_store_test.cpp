#include <gtest/gtest.h>
#include <sqlite3.h>

#include <cstdlib>
#include <filesystem>

#include "hashsieve/store/store.h"

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

TEST(SqliteStore, PutThenHasAndGetRoundTrip) {
  TempDir dir;
  auto store = open_sqlite_store(dir.path());
  ASSERT_TRUE(store.ok()) << store.error().message();
  const LayerKey key{"sha256:" + std::string(64, '1'), "crypto/1;sdbf/x"};
  auto before = (*store)->has_layer(key);
  ASSERT_TRUE(before.ok());
  EXPECT_FALSE(*before);
  auto missing = (*store)->get_layer_facts(key);
  ASSERT_TRUE(missing.ok());
  EXPECT_FALSE(missing->has_value());

  const LayerFacts facts = sample_facts();
  ASSERT_TRUE((*store)->put_layer_facts(key, facts).ok());
  auto after = (*store)->has_layer(key);
  ASSERT_TRUE(after.ok());
  EXPECT_TRUE(*after);
  auto got = (*store)->get_layer_facts(key);
  ASSERT_TRUE(got.ok());
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ(**got, facts);
}

TEST(SqliteStore, KeyIncludesHasherVersions) {
  TempDir dir;
  auto store = open_sqlite_store(dir.path());
  ASSERT_TRUE(store.ok());
  const std::string diff = "sha256:" + std::string(64, '2');
  ASSERT_TRUE((*store)->put_layer_facts({diff, "v1"}, sample_facts()).ok());
  auto other = (*store)->has_layer({diff, "v2"});
  ASSERT_TRUE(other.ok());
  EXPECT_FALSE(*other);
}

TEST(SqliteStore, PersistsAcrossReopenAndReplaces) {
  TempDir dir;
  const LayerKey key{"sha256:" + std::string(64, '3'), "v"};
  {
    auto store = open_sqlite_store(dir.path());
    ASSERT_TRUE(store.ok());
    ASSERT_TRUE((*store)->put_layer_facts(key, sample_facts()).ok());
  }
  auto store = open_sqlite_store(dir.path());
  ASSERT_TRUE(store.ok());
  auto got = (*store)->get_layer_facts(key);
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_EQ(**got, sample_facts());
  LayerFacts smaller;
  smaller.files.push_back(entry("only", FactKind::regular, 1));
  ASSERT_TRUE((*store)->put_layer_facts(key, smaller).ok());
  got = (*store)->get_layer_facts(key);
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_EQ(**got, smaller);
}

TEST(SqliteStore, FailedPutLeavesNoPartialLayer) {
  TempDir dir;
  auto store = open_sqlite_store(dir.path());
  ASSERT_TRUE(store.ok());
  const LayerKey key{"sha256:" + std::string(64, '4'), "v"};
  ASSERT_TRUE((*store)->put_layer_facts(key, sample_facts()).ok());
  // The third row cannot be stored: the whole put must roll back, keeping the
  // previous facts of `key` and storing nothing under `fresh`.
  LayerFacts bad = sample_facts();
  bad.files[2].size = std::uint64_t{1} << 63;
  auto st = (*store)->put_layer_facts(key, bad);
  EXPECT_FALSE(st.ok());
  auto got = (*store)->get_layer_facts(key);
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_EQ(**got, sample_facts());
  const LayerKey fresh{"sha256:" + std::string(64, '5'), "v"};
  EXPECT_FALSE((*store)->put_layer_facts(fresh, bad).ok());
  auto has = (*store)->has_layer(fresh);
  ASSERT_TRUE(has.ok());
  EXPECT_FALSE(*has);
}

TEST(SqliteStore, ScanResultsNewestFirst) {
  TempDir dir;
  auto store = open_sqlite_store(dir.path());
  ASSERT_TRUE(store.ok());
  ScanRecord a{0, "docker-archive:a.tar", "sha256:aa", "linux/amd64", "2026-11-22T00:00:00Z", "known", "{}"};
  ScanRecord b{0, "dir:/x", "", "linux/amd64", "2026-11-22T00:01:00Z", "malicious", "{\"files\":1}"};
  auto ida = (*store)->put_scan_result(a);
  auto idb = (*store)->put_scan_result(b);
  ASSERT_TRUE(ida.ok() && idb.ok());
  EXPECT_GT(*idb, *ida);
  auto list = (*store)->list_scan_results(10);
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 2u);
  b.id = *idb;
  a.id = *ida;
  EXPECT_EQ((*list)[0], b);
  EXPECT_EQ((*list)[1], a);
  auto one = (*store)->list_scan_results(1);
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(one->size(), 1u);
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
