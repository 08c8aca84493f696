// Import into the catalog: every format lands in a set that answers lookups,
// an unchanged source is not imported twice, and a failed import leaves the
// installed version in use.
#include "hashsieve/refset/importer.h"
#include "hashsieve/refset/nsrl_v3_schema.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace hashsieve::refset {
namespace {

namespace fs = std::filesystem;

const std::string kFixtures = std::string(HASHSIEVE_TEST_DATA) + "/refset";

// Two packages on top of kNsrlV3MinimalSchema; NetTool has two application types.
constexpr const char* kPackages = R"(
INSERT INTO PKG VALUES (1, 'Debian', '12', 1, 1, 'English', 'Operating System');
INSERT INTO PKG VALUES (2, 'NetTool', '1.0', 1, 1, 'English', 'Hacker Tool');
INSERT INTO PKG VALUES (2, 'NetTool', '1.0', 1, 1, 'English', 'Networking');
)";

// Hashes of three synthetic files: A only in package 1, B only in the hacker
// tool, C in both.
struct FileHashes {
  const char* sha256;
  const char* sha1;
  const char* md5;
};
constexpr FileHashes kA{"AA00000000000000000000000000000000000000000000000000000000000001",
                        "AA00000000000000000000000000000000000001", "AA000000000000000000000000000001"};
constexpr FileHashes kB{"BB00000000000000000000000000000000000000000000000000000000000002",
                        "BB00000000000000000000000000000000000002", "BB000000000000000000000000000002"};
constexpr FileHashes kC{"CC00000000000000000000000000000000000000000000000000000000000003",
                        "CC00000000000000000000000000000000000003", "CC000000000000000000000000000003"};

class ImporterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("hashsieve_import_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    auto catalog = RefsetCatalog::open((dir_ / "data").string());
    ASSERT_TRUE(catalog.ok()) << catalog.error().message();
    catalog_.emplace(std::move(catalog).value());
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string make_rds(const std::string& name, const std::vector<std::pair<FileHashes, int>>& rows) {
    const std::string path = (dir_ / name).string();
    sqlite3* db = nullptr;
    EXPECT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
    EXPECT_EQ(sqlite3_exec(db, kNsrlV3MinimalSchema, nullptr, nullptr, nullptr), SQLITE_OK);
    EXPECT_EQ(sqlite3_exec(db, kPackages, nullptr, nullptr, nullptr), SQLITE_OK);
    for (const auto& [h, package] : rows) {
      const std::string sql = std::string("INSERT INTO FILE VALUES ('") + h.sha256 + "','" + h.sha1 + "','" + h.md5 +
                              "','00000000','f'," + std::to_string(100) + "," + std::to_string(package) + ")";
      EXPECT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK);
    }
    sqlite3_close(db);
    return path;
  }

  Result<ImportOutcome> import(const std::string& name, SourceFormat format, const std::string& path,
                               std::optional<ReferenceClass> cls = std::nullopt) {
    ImportRequest r;
    r.name = name;
    r.format = format;
    r.path = path;
    r.set_class = cls;
    r.memory_budget = 1 << 20;
    return import_refset(*catalog_, r);
  }

  template <typename Digest>
  std::optional<RefsetHit> lookup(const std::string& set, const char* hex) {
    auto loaded = catalog_->load(set);
    EXPECT_TRUE(loaded.ok()) << loaded.error().message();
    if (!loaded.ok()) return std::nullopt;
    auto digest = Digest::parse_hex(hex);
    EXPECT_TRUE(digest.ok());
    auto hit = loaded->lookup(*digest);
    EXPECT_TRUE(hit.ok());
    return hit.ok() ? *hit : std::nullopt;
  }

  fs::path dir_;
  std::optional<RefsetCatalog> catalog_;
};

TEST_F(ImporterTest, NsrlV3HitsCarryProductCategoriesAndClass) {
  auto outcome = import("nsrl", SourceFormat::nsrl_v3, make_rds("rds.db", {{kA, 1}, {kB, 2}, {kC, 1}, {kC, 2}}));
  ASSERT_TRUE(outcome.ok()) << outcome.error().message();
  EXPECT_FALSE(outcome->unchanged);
  EXPECT_EQ(outcome->manifest.rows, 4u);
  EXPECT_EQ(outcome->manifest.md5_count, 3u);  // C appears twice, stored once
  EXPECT_EQ(outcome->manifest.sha256_count, 3u);
  EXPECT_EQ(outcome->manifest.set_class, ReferenceClass::known);

  auto a = lookup<digest::Md5Digest>("nsrl", "aa000000000000000000000000000001");  // lower case probe
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->hit_class, ReferenceClass::known);
  EXPECT_EQ(a->label, "Debian");
  EXPECT_EQ(a->digest_type, "md5");
  EXPECT_EQ(a->categories, std::vector<std::string>{"Operating System"});

  auto b = lookup<digest::Sha256Digest>("nsrl", kB.sha256);
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(b->hit_class, ReferenceClass::suspicious);  // Hacker Tool
  EXPECT_EQ(b->label, "NetTool");
  EXPECT_EQ(b->categories, (std::vector<std::string>{"Hacker Tool", "Networking"}));

  // In both packages: suspicious wins, whichever package's row came first.
  auto c = lookup<digest::Sha1Digest>("nsrl", kC.sha1);
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->hit_class, ReferenceClass::suspicious);

  // A hash equal to A's except in its last digit is not a hit.
  EXPECT_FALSE(lookup<digest::Md5Digest>("nsrl", "aa000000000000000000000000000002").has_value());
}

TEST_F(ImporterTest, UnchangedSourceIsNotImportedAgain) {
  const std::string path = make_rds("rds.db", {{kA, 1}});
  auto first = import("nsrl", SourceFormat::nsrl_v3, path);
  ASSERT_TRUE(first.ok()) << first.error().message();
  auto again = import("nsrl", SourceFormat::nsrl_v3, path);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->unchanged);
  EXPECT_EQ(again->manifest.version, first->manifest.version);
  EXPECT_EQ(again->manifest.fingerprint, first->manifest.fingerprint);

  const std::string changed = make_rds("rds2.db", {{kA, 1}, {kB, 2}});
  fs::rename(changed, path);
  auto updated = import("nsrl", SourceFormat::nsrl_v3, path);
  ASSERT_TRUE(updated.ok()) << updated.error().message();
  EXPECT_FALSE(updated->unchanged);
  EXPECT_EQ(updated->manifest.version, first->manifest.version + 1);
  EXPECT_TRUE(lookup<digest::Md5Digest>("nsrl", kB.md5).has_value());
}

TEST_F(ImporterTest, FailedImportsLeaveTheInstalledVersionInUse) {
  const std::string good = make_rds("rds.db", {{kA, 1}});
  auto first = import("nsrl", SourceFormat::nsrl_v3, good);
  ASSERT_TRUE(first.ok()) << first.error().message();

  // A truncated database, an empty file, and a file in the wrong format.
  const std::string bigger = make_rds("big.db", {{kA, 1}, {kB, 2}, {kC, 1}});
  const auto size = fs::file_size(bigger);
  fs::resize_file(bigger, size / 2);
  std::ofstream(dir_ / "empty.db").flush();
  struct Case {
    const char* name;
    SourceFormat format;
    std::string path;
  };
  const Case cases[] = {{"truncated sqlite", SourceFormat::nsrl_v3, bigger},
                        {"empty file", SourceFormat::nsrl_v3, (dir_ / "empty.db").string()},
                        {"clamav as nsrl-v3", SourceFormat::nsrl_v3, kFixtures + "/clamav/main.hdb"},
                        {"sqlite as clamav", SourceFormat::clamav, good},
                        {"missing file", SourceFormat::nsrl_v3, (dir_ / "nope.db").string()}};
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    auto failed = import("nsrl", c.format, c.path, ReferenceClass::known);
    ASSERT_FALSE(failed.ok());
    EXPECT_NE(failed.error().message().find("nsrl"), std::string::npos) << failed.error().message();
    auto installed = catalog_->manifest("nsrl");
    ASSERT_TRUE(installed.ok());
    EXPECT_EQ(installed->version, first->manifest.version);
    EXPECT_TRUE(lookup<digest::Md5Digest>("nsrl", kA.md5).has_value());
    for (const auto& e : fs::directory_iterator(catalog_->set_dir("nsrl"))) {
      EXPECT_NE(e.path().filename().string().rfind(".tmp-", 0), 0u) << "left behind: " << e.path();
    }
  }
}

TEST_F(ImporterTest, KnownBadListsAreMaliciousWithTheirNames) {
  auto clam = import("clam", SourceFormat::clamav, kFixtures + "/clamav/main.hdb");
  ASSERT_TRUE(clam.ok()) << clam.error().message();
  EXPECT_EQ(clam->manifest.set_class, ReferenceClass::malicious);
  EXPECT_GT(clam->manifest.warnings, 0u);  // the fixture has malformed lines
  auto hit = lookup<digest::Md5Digest>("clam", "d0f631ca1ddba8db3bcfcb9e057cdc98");
  ASSERT_TRUE(hit.has_value());
  EXPECT_EQ(hit->hit_class, ReferenceClass::malicious);
  EXPECT_EQ(hit->label, "Win.Trojan.Agent-1");

  auto vs = import("vs", SourceFormat::virusshare, kFixtures + "/virusshare/VirusShare_00000.md5");
  ASSERT_TRUE(vs.ok()) << vs.error().message();
  EXPECT_GT(vs->manifest.md5_count, 0u);
}

TEST_F(ImporterTest, NsrlV2SpecialCodeMarksMalicious) {
  auto v2 = import("nsrl2", SourceFormat::nsrl_v2, kFixtures + "/nsrl_v2/NSRLFile.txt");
  ASSERT_TRUE(v2.ok()) << v2.error().message();
  EXPECT_GT(v2->manifest.sha1_count, 0u);
  auto hit = lookup<digest::Sha1Digest>("nsrl2", "0000002D9D62AEBE1E0E9DB6C4C4C7C16A163D2C");
  ASSERT_TRUE(hit.has_value());
  EXPECT_EQ(hit->digest_type, "sha1");
}

TEST_F(ImporterTest, HashListsNeedAClassAndNamesAreValidated) {
  auto no_class = import("list", SourceFormat::hashlist, kFixtures + "/hashlist/SHA256SUMS");
  ASSERT_FALSE(no_class.ok());
  EXPECT_EQ(no_class.error().code(), ErrorCode::invalid_argument);
  auto with_class = import("list", SourceFormat::hashlist, kFixtures + "/hashlist/SHA256SUMS", ReferenceClass::malicious);
  ASSERT_TRUE(with_class.ok()) << with_class.error().message();
  for (const char* bad : {"", "../x", ".hidden", "a/b", "x y"}) {
    SCOPED_TRACE(bad);
    EXPECT_FALSE(import(bad, SourceFormat::virusshare, kFixtures + "/virusshare/VirusShare_00000.md5").ok());
  }
}

TEST_F(ImporterTest, ListShowRemove) {
  ASSERT_TRUE(import("b-set", SourceFormat::clamav, kFixtures + "/clamav/main.hdb").ok());
  ASSERT_TRUE(import("a-set", SourceFormat::virusshare, kFixtures + "/virusshare/VirusShare_00000.md5").ok());
  auto sets = catalog_->list();
  ASSERT_TRUE(sets.ok());
  ASSERT_EQ(sets->size(), 2u);
  EXPECT_EQ((*sets)[0].name, "a-set");
  EXPECT_EQ((*sets)[1].format, "clamav");
  ASSERT_TRUE(catalog_->remove("a-set").ok());
  EXPECT_EQ(catalog_->list()->size(), 1u);
  auto gone = catalog_->manifest("a-set");
  ASSERT_FALSE(gone.ok());
  EXPECT_EQ(gone.error().code(), ErrorCode::not_found);
  EXPECT_EQ(catalog_->remove("a-set").error().code(), ErrorCode::not_found);
}

TEST(RefsetManifest, JsonRoundTripAndBadJson) {
  RefsetManifest m;
  m.name = "n";
  m.format = "clamav";
  m.set_class = ReferenceClass::malicious;
  m.fingerprint = "ab";
  m.version = 3;
  m.md5_count = 7;
  auto back = manifest_from_json(manifest_to_json(m));
  ASSERT_TRUE(back.ok()) << back.error().message();
  EXPECT_EQ(back->version, 3u);
  EXPECT_EQ(back->md5_count, 7u);
  EXPECT_EQ(back->set_class, ReferenceClass::malicious);
  for (const char* bad : {"", "{", "[]", "{\"name\": 1}"}) {
    auto r = manifest_from_json(bad);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code(), ErrorCode::parse_error);
  }
}

}  // namespace
}  // namespace hashsieve::refset
