// NSRL RDS v3 reader over databases built here in the real layouts: the
// minimal one (FILE/MFG/OS/PKG/VERSION tables + DISTINCT_HASH view) and a full
// one (base tables, FILE and PKG as views, no crc32).
#include <sqlite3.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>

#include "hashsieve/refset/nsrl_v3_schema.h"
#include "source_test_util.h"

namespace hashsieve::refset {
namespace {

using testing::describe;
using testing::RecordingSink;
using testing::TempDir;

// Rows every minimal test database shares; the tables are kNsrlV3MinimalSchema.
constexpr const char* kMinimalFixedRows = R"sql(
INSERT INTO MFG VALUES (914, 'Example Corp');
INSERT INTO OS VALUES (189, 'Windows', '10', 914);
INSERT INTO VERSION VALUES ('2024.03.1', 'Modern', '2024-03-01', '2024-03-15', 'test set');
)sql";

// Full layout: per-file data in METADATA (name and extension apart), package
// membership in PACKAGE_OBJECT, FILE and PKG as views; no crc32 anywhere.
constexpr const char* kFullSchema = R"sql(
CREATE TABLE METADATA (object_id INTEGER PRIMARY KEY, sha256 VARCHAR, sha1 VARCHAR, md5 VARCHAR,
                       file_name VARCHAR, extension VARCHAR, bytes INTEGER);
CREATE TABLE PACKAGE_OBJECT (package_id INTEGER, object_id INTEGER);
CREATE TABLE APPLICATION (package_id INTEGER PRIMARY KEY, name VARCHAR, version VARCHAR);
CREATE TABLE APPLICATION_TYPE (package_id INTEGER, application_type VARCHAR);
CREATE VIEW FILE AS
  SELECT m.sha256, m.sha1, m.md5,
         m.file_name || CASE WHEN m.extension <> '' THEN '.' || m.extension ELSE '' END AS file_name,
         m.bytes AS file_size, po.package_id
  FROM METADATA m JOIN PACKAGE_OBJECT po ON po.object_id = m.object_id;
CREATE VIEW PKG AS
  SELECT a.package_id, a.name, a.version, t.application_type
  FROM APPLICATION a JOIN APPLICATION_TYPE t ON t.package_id = a.package_id;
)sql";

struct Db {
  sqlite3* db = nullptr;
  explicit Db(const std::string& path) {
    std::filesystem::remove(path);
    EXPECT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
    exec("PRAGMA synchronous=OFF");  // scratch files: no need to wait for the disk
  }
  ~Db() { sqlite3_close(db); }
  void exec(const std::string& sql) {
    char* err = nullptr;
    EXPECT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err), SQLITE_OK) << (err ? err : "") << "\n" << sql;
    sqlite3_free(err);
  }
};

std::string sql_text(std::string_view s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') out += '\'';
    out += c;
  }
  return out + "'";
}

// Deterministic upper-case hex of `digits` digits, different per seed.
std::string hex_digits(unsigned seed, std::size_t digits) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string s;
  std::uint64_t x = 0x9E3779B97F4A7C15ull * (seed + 1);
  for (std::size_t i = 0; i < digits; ++i) {
    x ^= x >> 29;
    x *= 0xBF58476D1CE4E5B9ull;
    x ^= x >> 32;
    s += kHex[x & 0xF];
  }
  return s;
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

struct PkgRow {
  std::int64_t id;
  std::string name, version, language, type;
};

struct FileRow {
  std::string sha256, sha1, md5, crc32, name;
  std::int64_t size;
  std::int64_t package;
};

// The rows a valid FileRow must produce, built from the input spelling.
std::string expected_row(const FileRow& f, bool with_crc) {
  SourceRow r;
  r.sha256 = *Sha256Digest::parse_hex(f.sha256);
  r.sha1 = *Sha1Digest::parse_hex(f.sha1);
  r.md5 = *Md5Digest::parse_hex(f.md5);
  if (with_crc) r.crc32 = *Crc32::parse_hex(f.crc32);
  r.size = static_cast<std::uint64_t>(f.size);
  r.product_id = f.package;
  r.name = f.name;
  return describe(r);
}

const std::vector<PkgRow> kPackages = {
    // Package 10: three PKG rows (two languages, two types; one type twice).
    {10, "Office Suite", "2019", "English", "Word Processor"},
    {10, "Office Suite", "2019", "French", "Word Processor"},
    {10, "Office Suite", "2019", "English", "Spreadsheet"},
    {11, "Cain & Abel", "4.9.56", "English", "Hacker Tool"},
    {11, "Cain & Abel", "4.9.56", "English", "Password Recovery"},
    {12, "OpenStego", "0.8", "English", "Steganography"},
    {13, "Keyboard Logger", "1.0", "English", "hacker tools"},
};

std::vector<std::string> expected_products(const SourceOptions& options = {}) {
  // Group kPackages by id, categories de-duplicated and sorted.
  std::vector<SourceProduct> products;
  for (const auto& p : kPackages) {
    if (products.empty() || products.back().id != p.id) products.push_back({p.id, p.name, p.version, {}, "", ""});
    auto& cats = products.back().categories;
    if (std::find(cats.begin(), cats.end(), p.type) == cats.end()) cats.push_back(p.type);
  }
  std::vector<std::string> out;
  for (auto& p : products) {
    std::sort(p.categories.begin(), p.categories.end());
    for (const auto& c : p.categories) {
      if (auto m = match_suspicious_category(c, options)) {
        p.suspicious_category = c;
        p.suspicious_pattern = *m;
        break;
      }
    }
    out.push_back(describe(p));
  }
  return out;
}

std::vector<FileRow> sample_files() {
  std::vector<FileRow> files;
  for (unsigned i = 0; i < 6; ++i) {
    files.push_back({hex_digits(i, 64), hex_digits(100 + i, 40), hex_digits(200 + i, 32), hex_digits(300 + i, 8),
                     "file" + std::to_string(i) + ".dll", 1000 + i, 10 + static_cast<std::int64_t>(i % 4)});
  }
  // The same file shipped by a second package: FILE repeats the digests.
  files.push_back(files[1]);
  files.back().package = 13;
  // Lower-case hex (not NSRL's spelling) must read the same.
  files[2].sha256 = lower(files[2].sha256);
  files[2].md5 = lower(files[2].md5);
  // A name with a comma, a quote and UTF-8.
  files[3].name = "Quarterly \"report\", \xC3\xA9t\xC3\xA9.xls";
  // A zero-byte file.
  files[4].size = 0;
  return files;
}

void fill_minimal(Db& db, const std::vector<FileRow>& files) {
  db.exec(kNsrlV3MinimalSchema);
  db.exec(kMinimalFixedRows);
  db.exec("BEGIN");
  for (const auto& p : kPackages) {
    db.exec("INSERT INTO PKG VALUES (" + std::to_string(p.id) + ", " + sql_text(p.name) + ", " +
            sql_text(p.version) + ", 189, 914, " + sql_text(p.language) + ", " + sql_text(p.type) + ")");
  }
  for (const auto& f : files) {
    db.exec("INSERT INTO FILE VALUES (" + sql_text(f.sha256) + ", " + sql_text(f.sha1) + ", " + sql_text(f.md5) +
            ", " + sql_text(f.crc32) + ", " + sql_text(f.name) + ", " + std::to_string(f.size) + ", " +
            std::to_string(f.package) + ")");
  }
  db.exec("COMMIT");
}

TEST(NsrlV3Source, MinimalLayoutEmitsProductsThenEveryFileRow) {
  TempDir dir;
  const std::string path = dir.file("RDS_2024.03.1_modern_minimal.db");
  const auto files = sample_files();
  {
    Db db(path);
    fill_minimal(db, files);
  }
  RecordingSink sink;
  auto stats = read_source(SourceFormat::nsrl_v3, path, sink);
  ASSERT_TRUE(stats.ok()) << stats.error().message();

  std::vector<std::string> want = expected_products();
  for (const auto& f : files) want.push_back(expected_row(f, true));
  testing::expect_events(sink.events, want);
  EXPECT_EQ(stats->rows, files.size());
  EXPECT_EQ(stats->products, 4u);
  EXPECT_EQ(stats->warnings, 0u);
  EXPECT_EQ(stats->bytes_read, std::filesystem::file_size(path));
}

TEST(NsrlV3Source, SuspiciousCategoriesFollowTheConfiguredMatcher) {
  TempDir dir;
  const std::string path = dir.file("rds.db");
  {
    Db db(path);
    fill_minimal(db, sample_files());
  }
  struct Case {
    const char* label;
    std::vector<std::string> substrings;
  };
  const Case cases[] = {
      {"default", SuspiciousCategoryMatcher{}.substrings},
      {"only password tools", {"password"}},
      {"none", {}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.label);
    SourceOptions options;
    options.suspicious.substrings = c.substrings;
    RecordingSink sink;
    ASSERT_TRUE(read_source(SourceFormat::nsrl_v3, path, sink, options).ok());
    const auto want = expected_products(options);
    ASSERT_GE(sink.events.size(), want.size());
    testing::expect_events({sink.events.begin(), sink.events.begin() + static_cast<std::ptrdiff_t>(want.size())},
                           want);
  }
}

TEST(NsrlV3Source, FullLayoutWithViewsAndNoCrc32) {
  TempDir dir;
  const std::string path = dir.file("RDS_2024.03.1_modern.db");
  const auto files = sample_files();
  {
    Db db(path);
    db.exec(kFullSchema);
    // APPLICATION holds one row per package; the types go to their own table.
    std::int64_t last = -1;
    for (const auto& p : kPackages) {
      if (p.id != last) {
        db.exec("INSERT INTO APPLICATION VALUES (" + std::to_string(p.id) + ", " + sql_text(p.name) + ", " +
                sql_text(p.version) + ")");
        last = p.id;
      }
      db.exec("INSERT INTO APPLICATION_TYPE VALUES (" + std::to_string(p.id) + ", " + sql_text(p.type) + ")");
    }
    int object = 0;
    for (const auto& f : files) {
      const auto dot = f.name.rfind('.');
      db.exec("INSERT INTO METADATA VALUES (" + std::to_string(++object) + ", " + sql_text(f.sha256) + ", " +
              sql_text(f.sha1) + ", " + sql_text(f.md5) + ", " + sql_text(f.name.substr(0, dot)) + ", " +
              sql_text(f.name.substr(dot + 1)) + ", " + std::to_string(f.size) + ")");
      db.exec("INSERT INTO PACKAGE_OBJECT VALUES (" + std::to_string(f.package) + ", " + std::to_string(object) +
              ")");
    }
  }
  RecordingSink sink;
  auto stats = read_source(SourceFormat::nsrl_v3, path, sink);
  ASSERT_TRUE(stats.ok()) << stats.error().message();

  const auto products = expected_products();
  ASSERT_GE(sink.events.size(), products.size());
  testing::expect_events({sink.events.begin(), sink.events.begin() + static_cast<std::ptrdiff_t>(products.size())},
                         products);
  // A join view has no defined row order: compare the rows as multisets.
  std::vector<std::string> rows(sink.events.begin() + static_cast<std::ptrdiff_t>(products.size()), sink.events.end());
  std::vector<std::string> want;
  for (const auto& f : files) want.push_back(expected_row(f, false));
  std::sort(rows.begin(), rows.end());
  std::sort(want.begin(), want.end());
  testing::expect_events(rows, want);
  EXPECT_EQ(stats->warnings, 0u);
}

TEST(NsrlV3Source, MalformedRowsAreWarningsNamingTheRowAndTheImportGoesOn) {
  TempDir dir;
  const std::string path = dir.file("rds.db");
  auto files = sample_files();
  files.resize(3);
  FileRow bad_md5 = files[0];
  bad_md5.md5 = "XYZ";
  FileRow bad_crc = files[1];
  bad_crc.crc32 = "12345G78";
  FileRow no_digest = files[2];
  no_digest.sha256 = no_digest.sha1 = no_digest.md5 = "";
  FileRow bad_size = files[0];
  bad_size.size = -5;
  const std::vector<FileRow> input = {files[0], bad_md5, files[1], bad_crc, no_digest, bad_size, files[2]};
  {
    Db db(path);
    fill_minimal(db, input);
  }
  RecordingSink sink;
  auto stats = read_source(SourceFormat::nsrl_v3, path, sink);
  ASSERT_TRUE(stats.ok()) << stats.error().message();
  std::vector<std::string> want = expected_products();
  want.push_back(expected_row(files[0], true));
  want.push_back("warning FILE row 2: bad MD5 'XYZ'");
  want.push_back(expected_row(files[1], true));
  want.push_back("warning FILE row 4: bad CRC32 '12345G78'");
  want.push_back("warning FILE row 5: no digest");
  want.push_back("warning FILE row 6: bad file_size '-5'");
  want.push_back(expected_row(files[2], true));
  testing::expect_events(sink.events, want);
  EXPECT_EQ(stats->rows, 3u);
  EXPECT_EQ(stats->warnings, 4u);
}

TEST(NsrlV3Source, MissingPkgIsAWarning) {
  TempDir dir;
  const std::string path = dir.file("rds.db");
  auto files = sample_files();
  {
    Db db(path);
    fill_minimal(db, files);
    db.exec("DROP TABLE PKG");
  }
  RecordingSink sink;
  auto stats = read_source(SourceFormat::nsrl_v3, path, sink);
  ASSERT_TRUE(stats.ok()) << stats.error().message();
  ASSERT_FALSE(sink.events.empty());
  EXPECT_EQ(sink.events[0],
            "warning the database has no PKG table or view: rows carry package ids but no product names or "
            "categories");
  EXPECT_EQ(stats->products, 0u);
  EXPECT_EQ(stats->rows, files.size());
}

TEST(NsrlV3Source, ProgressReportsRowsAndTheRowEstimate) {
  TempDir dir;
  const std::string path = dir.file("rds.db");
  std::vector<FileRow> files;
  for (unsigned i = 0; i < 250; ++i) {
    files.push_back({hex_digits(i, 64), hex_digits(i + 7, 40), hex_digits(i + 9, 32), hex_digits(i, 8), "f", i, 10});
  }
  {
    Db db(path);
    fill_minimal(db, files);
  }
  std::vector<SourceProgress> seen;
  SourceOptions options;
  options.progress_every_rows = 100;
  options.progress = [&](const SourceProgress& p) { seen.push_back(p); };
  RecordingSink sink;
  ASSERT_TRUE(read_source(SourceFormat::nsrl_v3, path, sink, options).ok());
  ASSERT_EQ(seen.size(), 3u);  // after rows 100 and 200, and at the end
  EXPECT_EQ(seen[0].rows_done, 100u);
  EXPECT_EQ(seen[1].rows_done, 200u);
  EXPECT_EQ(seen[2].rows_done, 250u);
  EXPECT_EQ(seen[2].rows_estimate, std::optional<std::uint64_t>(250));
  EXPECT_EQ(seen[2].bytes_total, std::optional<std::uint64_t>(std::filesystem::file_size(path)));
}

// A database big enough to span many pages, for the damage cases.
std::string make_big_db(const TempDir& dir, const std::string& name) {
  const std::string path = dir.file(name);
  std::vector<FileRow> files;
  for (unsigned i = 0; i < 400; ++i) {
    files.push_back({hex_digits(i, 64), hex_digits(i + 1, 40), hex_digits(i + 2, 32), hex_digits(i + 3, 8),
                     "name" + std::to_string(i), i, 10});
  }
  Db db(path);
  fill_minimal(db, files);
  return path;
}

TEST(NsrlV3Source, DamagedOrForeignFilesAreClearErrors) {
  TempDir dir;
  struct Case {
    const char* label;
    std::function<std::string()> make;
    ErrorCode code;
    std::string message_part;
  };
  const Case cases[] = {
      {"empty file", [&] { return dir.write("empty.db", ""); }, ErrorCode::parse_error,
       "empty file, expected an NSRL RDS v3 SQLite database"},
      {"ClamAV text", [&] { return dir.write("main.hdb", "48c4533230e1ae1c118c741c0db19dfb:17387:test.exe\n"); },
       ErrorCode::parse_error, "does not look like an NSRL RDS v3 SQLite database: no 'SQLite format 3' header"},
      {"JPEG", [&] { return dir.write("photo.jpg", std::string("\xFF\xD8\xFF\xE0\0\x10JFIF\0", 11)); },
       ErrorCode::parse_error, "does not look like an NSRL RDS v3 SQLite database"},
      {"truncated to whole pages",
       [&] {
         const std::string p = make_big_db(dir, "trunc_pages.db");
         std::filesystem::resize_file(p, std::filesystem::file_size(p) / 2 / 4096 * 4096);
         return p;
       },
       ErrorCode::parse_error, "truncated SQLite database: the header says"},
      {"truncated mid-page",
       [&] {
         const std::string p = make_big_db(dir, "trunc_mid.db");
         std::filesystem::resize_file(p, std::filesystem::file_size(p) - 1000);
         return p;
       },
       ErrorCode::parse_error, "truncated SQLite database"},
      {"shorter than the header",
       [&] {
         const std::string p = make_big_db(dir, "trunc_header.db");
         std::filesystem::resize_file(p, 50);
         return p;
       },
       ErrorCode::parse_error, "shorter than the 100-byte header"},
      {"no FILE table",
       [&] {
         const std::string p = dir.file("nofile.db");
         Db db(p);
         db.exec("CREATE TABLE PKG (package_id INTEGER, name VARCHAR)");
         return p;
       },
       ErrorCode::parse_error, "the database has no FILE table or view"},
      {"FILE without digest columns",
       [&] {
         const std::string p = dir.file("nodigest.db");
         Db db(p);
         db.exec("CREATE TABLE FILE (path VARCHAR, size INTEGER); INSERT INTO FILE VALUES ('a', 1)");
         return p;
       },
       ErrorCode::parse_error, "FILE has none of the columns sha256, sha1, md5"},
      {"FILE of some other application",
       [&] {
         const std::string p = dir.file("other.db");
         Db db(p);
         db.exec("CREATE TABLE FILE (md5 VARCHAR, file_name VARCHAR)");
         for (int i = 0; i < 20; ++i) db.exec("INSERT INTO FILE VALUES ('not a digest', 'x')");
         return p;
       },
       ErrorCode::parse_error, "does not look like an NSRL RDS v3 SQLite database: the first 16 FILE rows are malformed"},
      {"corrupt page",
       [&] {
         const std::string p = make_big_db(dir, "corrupt.db");
         // Overwrite page 2, the root of FILE's B-tree (the first table
         // created), with garbage; the size stays intact.
         std::fstream f(p, std::ios::in | std::ios::out | std::ios::binary);
         f.seekp(4096);
         const std::string junk(4096, '\x5A');
         f.write(junk.data(), static_cast<std::streamsize>(junk.size()));
         return p;
       },
       ErrorCode::parse_error, "corrupt or truncated database"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.label);
    const std::string path = c.make();
    RecordingSink sink;
    auto r = read_source(SourceFormat::nsrl_v3, path, sink);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code(), c.code);
    EXPECT_NE(r.error().message().find(c.message_part), std::string::npos) << r.error().message();
    EXPECT_NE(r.error().message().find(path), std::string::npos) << r.error().message();
    EXPECT_EQ(sink.rows, 0u);
  }
}

}  // namespace
}  // namespace hashsieve::refset
