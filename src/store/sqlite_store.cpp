// The SQLite backend of the store: <data-dir>/store.db, WAL mode.
//
// Schema (version 2):
//   meta(key PRIMARY KEY, value)                       schema_version
//   layers(id, diff_id, hasher_versions, files)        UNIQUE(diff_id, hasher_versions)
//   layer_files(layer_id, seq, path, kind, ...)        one row per entry, tar order;
//                                                      version 2 added the nullable
//                                                      rodata_size, rodata_sdbf,
//                                                      rodata_tlsh, rodata_ssdeep
//                                                      (NULL: no .rodata digests)
//   scans(id AUTOINCREMENT, reference, image_digest, platform, scanned_at, verdict, summary_json)
// A layer's rows are written in one IMMEDIATE transaction together with its
// `layers` row, and readers look a layer up through `layers`, so a layer is
// visible completely or not at all.
#include <sqlite3.h>

#include <filesystem>
#include <iterator>
#include <mutex>

#include "hashsieve/store/store.h"

namespace hashsieve::store {
namespace {

struct Closer {
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
struct Finalizer {
  void operator()(sqlite3_stmt* st) const { sqlite3_finalize(st); }
};
using Db = std::unique_ptr<sqlite3, Closer>;
using Stmt = std::unique_ptr<sqlite3_stmt, Finalizer>;

constexpr int kSchemaVersion = 2;

Error db_error(sqlite3* db, const std::string& what) {
  return Error(ErrorCode::io_error, "store: " + what + ": " + (db != nullptr ? sqlite3_errmsg(db) : "out of memory"));
}

Status exec(sqlite3* db, const char* sql) {
  char* message = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &message) != SQLITE_OK) {
    std::string text = message != nullptr ? message : "unknown error";
    sqlite3_free(message);
    return Error(ErrorCode::io_error, std::string("store: ") + sql + ": " + text);
  }
  return {};
}

Result<Stmt> prepare(sqlite3* db, const char* sql) {
  sqlite3_stmt* raw = nullptr;
  if (sqlite3_prepare_v2(db, sql, -1, &raw, nullptr) != SQLITE_OK) return db_error(db, sql);
  return Stmt(raw);
}

void bind_text(sqlite3_stmt* st, int i, const std::string& s) {
  sqlite3_bind_text(st, i, s.data(), static_cast<int>(s.size()), SQLITE_TRANSIENT);
}

std::string column_text(sqlite3_stmt* st, int i) {
  const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(st, i));
  return p == nullptr ? std::string() : std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(st, i)));
}

constexpr const char* kSchema =
    "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS layers("
    "  id INTEGER PRIMARY KEY, diff_id TEXT NOT NULL, hasher_versions TEXT NOT NULL,"
    "  files INTEGER NOT NULL, UNIQUE(diff_id, hasher_versions));"
    "CREATE TABLE IF NOT EXISTS layer_files("
    "  layer_id INTEGER NOT NULL, seq INTEGER NOT NULL, path TEXT NOT NULL, kind TEXT NOT NULL,"
    "  size INTEGER NOT NULL, mode INTEGER NOT NULL, link_target TEXT NOT NULL,"
    "  md5 TEXT NOT NULL, sha1 TEXT NOT NULL, sha256 TEXT NOT NULL, crc32 TEXT NOT NULL,"
    "  sdbf TEXT NOT NULL, tlsh TEXT NOT NULL, ssdeep TEXT NOT NULL, content_keys TEXT NOT NULL,"
    "  similarity INTEGER NOT NULL,"
    "  PRIMARY KEY(layer_id, seq)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS scans("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT, reference TEXT NOT NULL, image_digest TEXT NOT NULL,"
    "  platform TEXT NOT NULL, scanned_at TEXT NOT NULL, verdict TEXT NOT NULL, summary_json TEXT NOT NULL);";

// Migrations from version N-1 to N (index N-2): what a database written by an
// older build needs. A fresh database gets kSchema (version 1) and then
// every migration, so both paths give the same tables.
constexpr const char* kMigrations[] = {
    // 2: the .rodata section digests of ELF files (docs/adr/0012).
    "ALTER TABLE layer_files ADD COLUMN rodata_size INTEGER;"
    "ALTER TABLE layer_files ADD COLUMN rodata_sdbf TEXT;"
    "ALTER TABLE layer_files ADD COLUMN rodata_tlsh TEXT;"
    "ALTER TABLE layer_files ADD COLUMN rodata_ssdeep TEXT;",
};
static_assert(std::size(kMigrations) == static_cast<std::size_t>(kSchemaVersion - 1));

void bind_optional_text(sqlite3_stmt* st, int i, const std::string& s) {
  if (s.empty()) {
    sqlite3_bind_null(st, i);
  } else {
    bind_text(st, i, s);
  }
}

class SqliteStore final : public Store {
 public:
  explicit SqliteStore(Db db) : db_(std::move(db)) {}

  Result<bool> has_layer(const LayerKey& key) override {
    std::lock_guard lock(mutex_);
    auto id = layer_id(key);
    if (!id.ok()) return std::move(id).error();
    return id->has_value();
  }

  Result<std::optional<LayerFacts>> get_layer_facts(const LayerKey& key) override {
    std::lock_guard lock(mutex_);
    // One read transaction, so the layer row and its files are one snapshot.
    if (auto st = exec(db_.get(), "BEGIN"); !st.ok()) return std::move(st).error();
    auto out = read_layer(key);
    (void)exec(db_.get(), "COMMIT");
    return out;
  }

  Status put_layer_facts(const LayerKey& key, const LayerFacts& facts) override {
    std::lock_guard lock(mutex_);
    if (auto st = exec(db_.get(), "BEGIN IMMEDIATE"); !st.ok()) return st;
    auto st = write_layer(key, facts);
    if (!st.ok()) {
      (void)exec(db_.get(), "ROLLBACK");
      return std::move(st).error().with_context("storing facts of layer " + key.diff_id);
    }
    if (auto c = exec(db_.get(), "COMMIT"); !c.ok()) {
      (void)exec(db_.get(), "ROLLBACK");
      return c;
    }
    return {};
  }

  Result<std::int64_t> put_scan_result(const ScanRecord& r) override {
    std::lock_guard lock(mutex_);
    auto st = prepare(db_.get(),
                      "INSERT INTO scans(reference, image_digest, platform, scanned_at, verdict, summary_json)"
                      " VALUES(?,?,?,?,?,?)");
    if (!st.ok()) return std::move(st).error();
    bind_text(st->get(), 1, r.reference);
    bind_text(st->get(), 2, r.image_digest);
    bind_text(st->get(), 3, r.platform);
    bind_text(st->get(), 4, r.scanned_at);
    bind_text(st->get(), 5, r.verdict);
    bind_text(st->get(), 6, r.summary_json);
    if (sqlite3_step(st->get()) != SQLITE_DONE) return db_error(db_.get(), "storing a scan result");
    return static_cast<std::int64_t>(sqlite3_last_insert_rowid(db_.get()));
  }

  Result<std::vector<ScanRecord>> list_scan_results(std::size_t limit) override {
    std::lock_guard lock(mutex_);
    auto st = prepare(db_.get(),
                      "SELECT id, reference, image_digest, platform, scanned_at, verdict, summary_json"
                      " FROM scans ORDER BY id DESC LIMIT ?");
    if (!st.ok()) return std::move(st).error();
    sqlite3_bind_int64(st->get(), 1, static_cast<sqlite3_int64>(std::min<std::size_t>(limit, INT64_MAX)));
    std::vector<ScanRecord> out;
    int rc;
    while ((rc = sqlite3_step(st->get())) == SQLITE_ROW) {
      ScanRecord r;
      r.id = sqlite3_column_int64(st->get(), 0);
      r.reference = column_text(st->get(), 1);
      r.image_digest = column_text(st->get(), 2);
      r.platform = column_text(st->get(), 3);
      r.scanned_at = column_text(st->get(), 4);
      r.verdict = column_text(st->get(), 5);
      r.summary_json = column_text(st->get(), 6);
      out.push_back(std::move(r));
    }
    if (rc != SQLITE_DONE) return db_error(db_.get(), "listing scan results");
    return out;
  }

 private:
  Result<std::optional<std::int64_t>> layer_id(const LayerKey& key) {
    auto st = prepare(db_.get(), "SELECT id FROM layers WHERE diff_id = ? AND hasher_versions = ?");
    if (!st.ok()) return std::move(st).error();
    bind_text(st->get(), 1, key.diff_id);
    bind_text(st->get(), 2, key.hasher_versions);
    const int rc = sqlite3_step(st->get());
    if (rc == SQLITE_ROW) return std::optional<std::int64_t>(sqlite3_column_int64(st->get(), 0));
    if (rc == SQLITE_DONE) return std::optional<std::int64_t>();
    return db_error(db_.get(), "looking up layer " + key.diff_id);
  }

  Result<std::optional<LayerFacts>> read_layer(const LayerKey& key) {
    auto id = layer_id(key);
    if (!id.ok()) return std::move(id).error();
    if (!*id) return std::optional<LayerFacts>();
    auto st = prepare(db_.get(),
                      "SELECT path, kind, size, mode, link_target, md5, sha1, sha256, crc32, sdbf, tlsh, ssdeep,"
                      " content_keys, similarity, rodata_size, rodata_sdbf, rodata_tlsh, rodata_ssdeep"
                      " FROM layer_files WHERE layer_id = ? ORDER BY seq");
    if (!st.ok()) return std::move(st).error();
    sqlite3_bind_int64(st->get(), 1, **id);
    LayerFacts facts;
    int rc;
    while ((rc = sqlite3_step(st->get())) == SQLITE_ROW) {
      FileFacts f;
      f.path = column_text(st->get(), 0);
      auto kind = parse_fact_kind(column_text(st->get(), 1));
      if (!kind.ok()) return std::move(kind).error().with_context("store: layer " + key.diff_id + ": " + f.path);
      f.kind = *kind;
      const sqlite3_int64 size = sqlite3_column_int64(st->get(), 2);
      const sqlite3_int64 mode = sqlite3_column_int64(st->get(), 3);
      if (size < 0 || mode < 0 || mode > 0xFFFFFFFF) {
        return Error(ErrorCode::parse_error, "store: layer " + key.diff_id + ": " + f.path + ": bad size or mode");
      }
      f.size = static_cast<std::uint64_t>(size);
      f.mode = static_cast<std::uint32_t>(mode);
      f.link_target = column_text(st->get(), 4);
      f.md5 = column_text(st->get(), 5);
      f.sha1 = column_text(st->get(), 6);
      f.sha256 = column_text(st->get(), 7);
      f.crc32 = column_text(st->get(), 8);
      f.sdbf = column_text(st->get(), 9);
      f.tlsh = column_text(st->get(), 10);
      f.ssdeep = column_text(st->get(), 11);
      f.content_keys = column_text(st->get(), 12);
      f.similarity_computed = sqlite3_column_int(st->get(), 13) != 0;
      if (sqlite3_column_type(st->get(), 14) != SQLITE_NULL) {
        const sqlite3_int64 rodata_size = sqlite3_column_int64(st->get(), 14);
        if (rodata_size < 0) {
          return Error(ErrorCode::parse_error, "store: layer " + key.diff_id + ": " + f.path + ": bad rodata_size");
        }
        f.rodata_size = static_cast<std::uint64_t>(rodata_size);
      }
      f.rodata_sdbf = column_text(st->get(), 15);
      f.rodata_tlsh = column_text(st->get(), 16);
      f.rodata_ssdeep = column_text(st->get(), 17);
      facts.files.push_back(std::move(f));
    }
    if (rc != SQLITE_DONE) return db_error(db_.get(), "reading layer " + key.diff_id);
    return std::optional<LayerFacts>(std::move(facts));
  }

  Status write_layer(const LayerKey& key, const LayerFacts& facts) {
    auto old = layer_id(key);
    if (!old.ok()) return std::move(old).error();
    if (*old) {
      auto del = prepare(db_.get(), "DELETE FROM layer_files WHERE layer_id = ?");
      if (!del.ok()) return std::move(del).error();
      sqlite3_bind_int64(del->get(), 1, **old);
      if (sqlite3_step(del->get()) != SQLITE_DONE) return db_error(db_.get(), "replacing layer files");
      auto del_layer = prepare(db_.get(), "DELETE FROM layers WHERE id = ?");
      if (!del_layer.ok()) return std::move(del_layer).error();
      sqlite3_bind_int64(del_layer->get(), 1, **old);
      if (sqlite3_step(del_layer->get()) != SQLITE_DONE) return db_error(db_.get(), "replacing layer");
    }
    auto ins = prepare(db_.get(), "INSERT INTO layers(diff_id, hasher_versions, files) VALUES(?,?,?)");
    if (!ins.ok()) return std::move(ins).error();
    bind_text(ins->get(), 1, key.diff_id);
    bind_text(ins->get(), 2, key.hasher_versions);
    sqlite3_bind_int64(ins->get(), 3, static_cast<sqlite3_int64>(facts.files.size()));
    if (sqlite3_step(ins->get()) != SQLITE_DONE) return db_error(db_.get(), "inserting layer");
    const sqlite3_int64 id = sqlite3_last_insert_rowid(db_.get());
    auto row = prepare(db_.get(),
                       "INSERT INTO layer_files(layer_id, seq, path, kind, size, mode, link_target, md5, sha1,"
                       " sha256, crc32, sdbf, tlsh, ssdeep, content_keys, similarity,"
                       " rodata_size, rodata_sdbf, rodata_tlsh, rodata_ssdeep)"
                       " VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)");
    if (!row.ok()) return std::move(row).error();
    sqlite3_stmt* s = row->get();
    for (std::size_t i = 0; i < facts.files.size(); ++i) {
      const FileFacts& f = facts.files[i];
      if (f.size > static_cast<std::uint64_t>(INT64_MAX) ||
          (f.rodata_size && *f.rodata_size > static_cast<std::uint64_t>(INT64_MAX))) {
        return Error(ErrorCode::invalid_argument, f.path + ": size out of range");
      }
      sqlite3_reset(s);
      sqlite3_bind_int64(s, 1, id);
      sqlite3_bind_int64(s, 2, static_cast<sqlite3_int64>(i));
      bind_text(s, 3, f.path);
      sqlite3_bind_text(s, 4, to_string(f.kind), -1, SQLITE_STATIC);
      sqlite3_bind_int64(s, 5, static_cast<sqlite3_int64>(f.size));
      sqlite3_bind_int64(s, 6, f.mode);
      bind_text(s, 7, f.link_target);
      bind_text(s, 8, f.md5);
      bind_text(s, 9, f.sha1);
      bind_text(s, 10, f.sha256);
      bind_text(s, 11, f.crc32);
      bind_text(s, 12, f.sdbf);
      bind_text(s, 13, f.tlsh);
      bind_text(s, 14, f.ssdeep);
      bind_text(s, 15, f.content_keys);
      sqlite3_bind_int(s, 16, f.similarity_computed ? 1 : 0);
      if (f.rodata_size) {
        sqlite3_bind_int64(s, 17, static_cast<sqlite3_int64>(*f.rodata_size));
      } else {
        sqlite3_bind_null(s, 17);
      }
      bind_optional_text(s, 18, f.rodata_sdbf);
      bind_optional_text(s, 19, f.rodata_tlsh);
      bind_optional_text(s, 20, f.rodata_ssdeep);
      if (sqlite3_step(s) != SQLITE_DONE) return db_error(db_.get(), "inserting " + f.path);
    }
    return {};
  }

  std::mutex mutex_;
  Db db_;
};

}  // namespace

const char* to_string(FactKind kind) {
  switch (kind) {
    case FactKind::regular: return "regular";
    case FactKind::directory: return "directory";
    case FactKind::symlink: return "symlink";
    case FactKind::hardlink: return "hardlink";
    case FactKind::whiteout: return "whiteout";
    case FactKind::opaque_whiteout: return "opaque_whiteout";
    case FactKind::device: return "device";
  }
  return "regular";
}

Result<FactKind> parse_fact_kind(const std::string& text) {
  for (FactKind k : {FactKind::regular, FactKind::directory, FactKind::symlink, FactKind::hardlink,
                     FactKind::whiteout, FactKind::opaque_whiteout, FactKind::device}) {
    if (text == to_string(k)) return k;
  }
  return Error(ErrorCode::parse_error, "unknown entry kind '" + text + "'");
}

namespace {

// Brings the schema to kSchemaVersion (inside the caller's transaction).
// Refuses a database written by a newer schema rather than misread it.
Status migrate(sqlite3* db, const std::string& path) {
  auto get = prepare(db, "SELECT value FROM meta WHERE key = 'schema_version'");
  if (!get.ok()) return std::move(get).error();
  int version = 1;  // a fresh database: kSchema made the version-1 tables
  const int rc = sqlite3_step(get->get());
  if (rc == SQLITE_ROW) {
    const std::string v = column_text(get->get(), 0);
    int parsed = 0;
    for (const char c : v) parsed = (c >= '0' && c <= '9' && parsed < 1000000) ? parsed * 10 + (c - '0') : -1;
    if (v.empty() || parsed < 1 || parsed > kSchemaVersion) {
      return Error(ErrorCode::unsupported, "store: " + path + " has schema version " + v + ", this build reads " +
                                               std::to_string(kSchemaVersion));
    }
    version = parsed;
  } else if (rc != SQLITE_DONE) {
    return db_error(db, "reading the schema version of " + path);
  } else if (auto st = exec(db, "INSERT INTO meta(key, value) VALUES('schema_version', '1')"); !st.ok()) {
    return st;
  }
  get.value().reset();
  for (; version < kSchemaVersion; ++version) {
    if (auto st = exec(db, kMigrations[version - 1]); !st.ok()) {
      return std::move(st).error().with_context("migrating " + path + " to schema version " + std::to_string(version + 1));
    }
  }
  const std::string sql = "UPDATE meta SET value = '" + std::to_string(kSchemaVersion) + "' WHERE key = 'schema_version'";
  return exec(db, sql.c_str());
}

}  // namespace

Result<std::unique_ptr<Store>> open_sqlite_store(const std::string& data_dir) {
  std::error_code ec;
  std::filesystem::create_directories(data_dir, ec);
  if (ec) return Error(ErrorCode::io_error, "store: creating " + data_dir + ": " + ec.message());
  const std::string path = data_dir + "/store.db";
  sqlite3* raw = nullptr;
  const int rc = sqlite3_open_v2(path.c_str(), &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                                 nullptr);
  Db db(raw);
  if (rc != SQLITE_OK) return db_error(raw, "opening " + path);
  sqlite3_busy_timeout(db.get(), 10000);
  for (const char* sql : {"PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL", "PRAGMA foreign_keys=ON", kSchema}) {
    if (auto st = exec(db.get(), sql); !st.ok()) return std::move(st).error().with_context(path);
  }
  // One IMMEDIATE transaction reads the version and migrates, so two
  // processes opening an old database at once migrate it once.
  if (auto st = exec(db.get(), "BEGIN IMMEDIATE"); !st.ok()) return std::move(st).error().with_context(path);
  auto migrated = migrate(db.get(), path);
  if (!migrated.ok()) {
    (void)exec(db.get(), "ROLLBACK");
    return std::move(migrated).error();
  }
  if (auto st = exec(db.get(), "COMMIT"); !st.ok()) {
    (void)exec(db.get(), "ROLLBACK");
    return std::move(st).error().with_context(path);
  }
  return std::unique_ptr<Store>(new SqliteStore(std::move(db)));
}

}  // namespace hashsieve::store
