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
#include <filesystem>
#include <iterator>
#include <limits>
#include <mutex>

#include "hashsieve/sqlite/database.h"
#include "hashsieve/store/store.h"

namespace hashsieve::store {
namespace {

using sqlite::Database;
using sqlite::Statement;

constexpr int kSchemaVersion = 2;

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

void bind_optional_text(Statement& st, int i, const std::string& s) {
  if (s.empty()) {
    st.bind_null(i);
  } else {
    st.bind(i, s);
  }
}

constexpr auto kMaxInt64 = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());

class SqliteStore final : public Store {
 public:
  explicit SqliteStore(Database db) : db_(std::move(db)) {}

  Result<bool> has_layer(const LayerKey& key) override {
    std::lock_guard lock(mutex_);
    auto id = layer_id(key);
    if (!id.ok()) return std::move(id).error();
    return id->has_value();
  }

  Result<std::optional<LayerFacts>> get_layer_facts(const LayerKey& key) override {
    std::lock_guard lock(mutex_);
    // One read transaction, so the layer row and its files are one snapshot.
    return db_.read_transaction([&] { return read_layer(key); });
  }

  Status put_layer_facts(const LayerKey& key, const LayerFacts& facts) override {
    std::lock_guard lock(mutex_);
    return db_.transaction([&]() -> Status {
      auto st = write_layer(key, facts);
      if (!st.ok()) return std::move(st).error().with_context("storing facts of layer " + key.diff_id);
      return {};
    });
  }

  Result<std::int64_t> put_scan_result(const ScanRecord& r) override {
    std::lock_guard lock(mutex_);
    auto st = db_.prepare(
        "INSERT INTO scans(reference, image_digest, platform, scanned_at, verdict, summary_json)"
        " VALUES(?,?,?,?,?,?)");
    if (!st.ok()) return std::move(st).error();
    st->bind(1, r.reference).bind(2, r.image_digest).bind(3, r.platform).bind(4, r.scanned_at).bind(5, r.verdict);
    st->bind(6, r.summary_json);
    if (auto done = st->run(); !done.ok()) return std::move(done).error().with_context("storing a scan result");
    return db_.last_insert_rowid();
  }

  Result<std::vector<ScanRecord>> list_scan_results(std::size_t limit) override {
    std::lock_guard lock(mutex_);
    auto st = db_.prepare(
        "SELECT id, reference, image_digest, platform, scanned_at, verdict, summary_json"
        " FROM scans ORDER BY id DESC LIMIT ?");
    if (!st.ok()) return std::move(st).error();
    st->bind_u64(1, limit);
    std::vector<ScanRecord> out;
    auto done = st->for_each_row([&](const Statement& row) {
      ScanRecord r;
      r.id = row.int64(0);
      r.reference = row.text(1);
      r.image_digest = row.text(2);
      r.platform = row.text(3);
      r.scanned_at = row.text(4);
      r.verdict = row.text(5);
      r.summary_json = row.text(6);
      out.push_back(std::move(r));
    });
    if (!done.ok()) return std::move(done).error().with_context("listing scan results");
    return out;
  }

 private:
  Result<std::optional<std::int64_t>> layer_id(const LayerKey& key) {
    auto st = db_.prepare("SELECT id FROM layers WHERE diff_id = ? AND hasher_versions = ?");
    if (!st.ok()) return std::move(st).error();
    auto row = st->bind(1, key.diff_id).bind(2, key.hasher_versions).step();
    if (!row.ok()) return std::move(row).error().with_context("looking up layer " + key.diff_id);
    if (*row) return std::optional<std::int64_t>(st->int64(0));
    return std::optional<std::int64_t>();
  }

  Result<std::optional<LayerFacts>> read_layer(const LayerKey& key) {
    auto id = layer_id(key);
    if (!id.ok()) return std::move(id).error();
    if (!*id) return std::optional<LayerFacts>();
    auto st = db_.prepare(
        "SELECT path, kind, size, mode, link_target, md5, sha1, sha256, crc32, sdbf, tlsh, ssdeep,"
        " content_keys, similarity, rodata_size, rodata_sdbf, rodata_tlsh, rodata_ssdeep"
        " FROM layer_files WHERE layer_id = ? ORDER BY seq");
    if (!st.ok()) return std::move(st).error();
    st->bind(1, **id);
    LayerFacts facts;
    auto done = st->for_each_row([&](const Statement& row) -> Status {
      FileFacts f;
      f.path = row.text(0);
      auto kind = parse_fact_kind(row.text(1));
      if (!kind.ok()) return std::move(kind).error().with_context("store: layer " + key.diff_id + ": " + f.path);
      f.kind = *kind;
      const std::int64_t size = row.int64(2);
      const std::int64_t mode = row.int64(3);
      if (size < 0 || mode < 0 || mode > 0xFFFFFFFF) {
        return Error(ErrorCode::parse_error, "store: layer " + key.diff_id + ": " + f.path + ": bad size or mode");
      }
      f.size = static_cast<std::uint64_t>(size);
      f.mode = static_cast<std::uint32_t>(mode);
      f.link_target = row.text(4);
      f.md5 = row.text(5);
      f.sha1 = row.text(6);
      f.sha256 = row.text(7);
      f.crc32 = row.text(8);
      f.sdbf = row.text(9);
      f.tlsh = row.text(10);
      f.ssdeep = row.text(11);
      f.content_keys = row.text(12);
      f.similarity_computed = row.int64(13) != 0;
      if (!row.is_null(14)) {
        const std::int64_t rodata_size = row.int64(14);
        if (rodata_size < 0) {
          return Error(ErrorCode::parse_error, "store: layer " + key.diff_id + ": " + f.path + ": bad rodata_size");
        }
        f.rodata_size = static_cast<std::uint64_t>(rodata_size);
      }
      f.rodata_sdbf = row.text(15);
      f.rodata_tlsh = row.text(16);
      f.rodata_ssdeep = row.text(17);
      facts.files.push_back(std::move(f));
      return {};
    });
    if (!done.ok()) return std::move(done).error().with_context("reading layer " + key.diff_id);
    return std::optional<LayerFacts>(std::move(facts));
  }

  Status write_layer(const LayerKey& key, const LayerFacts& facts) {
    auto old = layer_id(key);
    if (!old.ok()) return std::move(old).error();
    if (*old) {
      for (const char* sql : {"DELETE FROM layer_files WHERE layer_id = ?", "DELETE FROM layers WHERE id = ?"}) {
        auto del = db_.prepare(sql);
        if (!del.ok()) return std::move(del).error();
        if (auto done = del->bind(1, **old).run(); !done.ok()) {
          return std::move(done).error().with_context("replacing layer");
        }
      }
    }
    auto ins = db_.prepare("INSERT INTO layers(diff_id, hasher_versions, files) VALUES(?,?,?)");
    if (!ins.ok()) return std::move(ins).error();
    ins->bind(1, key.diff_id).bind(2, key.hasher_versions).bind(3, static_cast<std::int64_t>(facts.files.size()));
    if (auto done = ins->run(); !done.ok()) return std::move(done).error().with_context("inserting layer");
    const std::int64_t id = db_.last_insert_rowid();
    auto row = db_.prepare(
        "INSERT INTO layer_files(layer_id, seq, path, kind, size, mode, link_target, md5, sha1,"
        " sha256, crc32, sdbf, tlsh, ssdeep, content_keys, similarity,"
        " rodata_size, rodata_sdbf, rodata_tlsh, rodata_ssdeep)"
        " VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)");
    if (!row.ok()) return std::move(row).error();
    Statement& s = *row;
    for (std::size_t i = 0; i < facts.files.size(); ++i) {
      const FileFacts& f = facts.files[i];
      if (f.size > kMaxInt64 || (f.rodata_size && *f.rodata_size > kMaxInt64)) {
        return Error(ErrorCode::invalid_argument, f.path + ": size out of range");
      }
      s.reset();
      s.bind(1, id).bind(2, static_cast<std::int64_t>(i)).bind(3, f.path).bind(4, to_string(f.kind));
      s.bind(5, static_cast<std::int64_t>(f.size)).bind(6, std::int64_t{f.mode}).bind(7, f.link_target);
      s.bind(8, f.md5).bind(9, f.sha1).bind(10, f.sha256).bind(11, f.crc32).bind(12, f.sdbf).bind(13, f.tlsh);
      s.bind(14, f.ssdeep).bind(15, f.content_keys).bind(16, std::int64_t{f.similarity_computed ? 1 : 0});
      if (f.rodata_size) {
        s.bind(17, static_cast<std::int64_t>(*f.rodata_size));
      } else {
        s.bind_null(17);
      }
      bind_optional_text(s, 18, f.rodata_sdbf);
      bind_optional_text(s, 19, f.rodata_tlsh);
      bind_optional_text(s, 20, f.rodata_ssdeep);
      if (auto done = s.run(); !done.ok()) return std::move(done).error().with_context("inserting " + f.path);
    }
    return {};
  }

  std::mutex mutex_;
  Database db_;
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
Status migrate(const Database& db) {
  const std::string& path = db.path();
  int version = 1;  // a fresh database: kSchema made the version-1 tables
  {
    auto get = db.prepare("SELECT value FROM meta WHERE key = 'schema_version'");
    if (!get.ok()) return std::move(get).error();
    auto row = get->step();
    if (!row.ok()) return std::move(row).error().with_context("reading the schema version of " + path);
    if (*row) {
      const std::string v = get->text(0);
      int parsed = 0;
      for (const char c : v) parsed = (c >= '0' && c <= '9' && parsed < 1000000) ? parsed * 10 + (c - '0') : -1;
      if (v.empty() || parsed < 1 || parsed > kSchemaVersion) {
        return Error(ErrorCode::unsupported, "store: " + path + " has schema version " + v + ", this build reads " +
                                                 std::to_string(kSchemaVersion));
      }
      version = parsed;
    } else if (auto st = db.exec("INSERT INTO meta(key, value) VALUES('schema_version', '1')"); !st.ok()) {
      return st;
    }
  }
  for (; version < kSchemaVersion; ++version) {
    if (auto st = db.exec(kMigrations[version - 1]); !st.ok()) {
      return std::move(st).error().with_context("migrating " + path + " to schema version " +
                                                std::to_string(version + 1));
    }
  }
  return db.exec("UPDATE meta SET value = '" + std::to_string(kSchemaVersion) + "' WHERE key = 'schema_version'");
}

}  // namespace

Result<std::unique_ptr<Store>> open_sqlite_store(const std::string& data_dir) {
  auto db = Database::open(data_dir + "/store.db", {.label = "store", .foreign_keys = true});
  if (!db.ok()) return std::move(db).error();
  if (auto st = db->exec(kSchema); !st.ok()) return std::move(st).error();
  // One IMMEDIATE transaction reads the version and migrates, so two
  // processes opening an old database at once migrate it once.
  if (auto st = db->transaction([&] { return migrate(*db); }); !st.ok()) return std::move(st).error();
  return std::unique_ptr<Store>(new SqliteStore(std::move(db).value()));
}

}  // namespace hashsieve::store
