// The SQLite backend of the container store: tables of its own in
// <data-dir>/store.db (WAL), created if missing; the image store's schema
// and its meta version are untouched.
//   containers(id PRIMARY KEY, name, image, image_id, image_scan_id, scanned_at,
//              verdict, drifted_files, errors, result_json)
//   container_schedule(id PRIMARY KEY, last_scan_ms, last_event_ms, failures)
#include <sqlite3.h>

#include <filesystem>
#include <memory>

#include "hashsieve/store/container_store.h"

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

Error db_error(sqlite3* db, const std::string& what) {
  return Error(ErrorCode::io_error,
               "container store: " + what + ": " + (db != nullptr ? sqlite3_errmsg(db) : "out of memory"));
}

constexpr const char* kSchema =
    "CREATE TABLE IF NOT EXISTS containers("
    "  id TEXT PRIMARY KEY, name TEXT NOT NULL, image TEXT NOT NULL, image_id TEXT NOT NULL,"
    "  image_scan_id INTEGER NOT NULL, scanned_at TEXT NOT NULL, verdict TEXT NOT NULL,"
    "  drifted_files INTEGER NOT NULL, errors INTEGER NOT NULL, result_json TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS container_schedule("
    "  id TEXT PRIMARY KEY, last_scan_ms INTEGER NOT NULL, last_event_ms INTEGER NOT NULL,"
    "  failures INTEGER NOT NULL);";

void bind_text(sqlite3_stmt* st, int i, const std::string& s) {
  sqlite3_bind_text(st, i, s.data(), static_cast<int>(s.size()), SQLITE_TRANSIENT);
}

std::string column_text(sqlite3_stmt* st, int i) {
  const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(st, i));
  return p == nullptr ? std::string() : std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(st, i)));
}

constexpr const char* kColumns =
    "id, name, image, image_id, image_scan_id, scanned_at, verdict, drifted_files, errors, result_json";

ContainerRecord read_record(sqlite3_stmt* st) {
  ContainerRecord r;
  r.id = column_text(st, 0);
  r.name = column_text(st, 1);
  r.image = column_text(st, 2);
  r.image_id = column_text(st, 3);
  r.image_scan_id = sqlite3_column_int64(st, 4);
  r.scanned_at = column_text(st, 5);
  r.verdict = column_text(st, 6);
  r.drifted_files = static_cast<std::uint64_t>(sqlite3_column_int64(st, 7));
  r.errors = static_cast<std::uint64_t>(sqlite3_column_int64(st, 8));
  r.result_json = column_text(st, 9);
  return r;
}

class SqliteContainerStore final : public ContainerStore {
 public:
  explicit SqliteContainerStore(Db db) : db_(std::move(db)) {}

  Status put_container_result(const ContainerRecord& r) override {
    auto st = prepare(std::string("INSERT OR REPLACE INTO containers(") + kColumns +
                      ") VALUES(?,?,?,?,?,?,?,?,?,?)");
    if (!st.ok()) return std::move(st).error();
    sqlite3_stmt* s = st->get();
    bind_text(s, 1, r.id);
    bind_text(s, 2, r.name);
    bind_text(s, 3, r.image);
    bind_text(s, 4, r.image_id);
    sqlite3_bind_int64(s, 5, r.image_scan_id);
    bind_text(s, 6, r.scanned_at);
    bind_text(s, 7, r.verdict);
    sqlite3_bind_int64(s, 8, static_cast<sqlite3_int64>(r.drifted_files));
    sqlite3_bind_int64(s, 9, static_cast<sqlite3_int64>(r.errors));
    bind_text(s, 10, r.result_json);
    if (sqlite3_step(s) != SQLITE_DONE) return db_error(db_.get(), "storing container " + r.id);
    return {};
  }

  Result<std::optional<ContainerRecord>> get_container_result(const std::string& id) override {
    {
      auto exact = prepare(std::string("SELECT ") + kColumns + " FROM containers WHERE id = ?");
      if (!exact.ok()) return std::move(exact).error();
      bind_text(exact->get(), 1, id);
      const int rc = sqlite3_step(exact->get());
      if (rc == SQLITE_ROW) return std::optional<ContainerRecord>(read_record(exact->get()));
      if (rc != SQLITE_DONE) return db_error(db_.get(), "reading container " + id);
    }
    if (id.size() < 4) return Error(ErrorCode::invalid_argument, "container ID prefix '" + id + "' is shorter than 4");
    // Prefix match by range, so LIKE wildcards in `id` mean nothing.
    auto st = prepare(std::string("SELECT ") + kColumns + " FROM containers WHERE id >= ? AND id < ? LIMIT 2");
    if (!st.ok()) return std::move(st).error();
    std::string upper = id;
    upper.push_back('\x7f');
    bind_text(st->get(), 1, id);
    bind_text(st->get(), 2, upper);
    std::vector<ContainerRecord> found;
    int rc = 0;
    while ((rc = sqlite3_step(st->get())) == SQLITE_ROW) found.push_back(read_record(st->get()));
    if (rc != SQLITE_DONE) return db_error(db_.get(), "reading container " + id);
    if (found.empty()) return std::optional<ContainerRecord>();
    if (found.size() > 1) {
      return Error(ErrorCode::invalid_argument, "container ID prefix '" + id + "' matches several containers");
    }
    return std::optional<ContainerRecord>(std::move(found[0]));
  }

  Result<std::vector<ContainerRecord>> list_container_results(std::size_t limit) override {
    auto st = prepare(std::string("SELECT ") + kColumns + " FROM containers ORDER BY scanned_at DESC, id LIMIT ?");
    if (!st.ok()) return std::move(st).error();
    sqlite3_bind_int64(st->get(), 1, static_cast<sqlite3_int64>(std::min<std::size_t>(limit, INT64_MAX)));
    std::vector<ContainerRecord> out;
    int rc = 0;
    while ((rc = sqlite3_step(st->get())) == SQLITE_ROW) out.push_back(read_record(st->get()));
    if (rc != SQLITE_DONE) return db_error(db_.get(), "listing containers");
    return out;
  }

  Result<std::vector<ContainerRecord>> list_containers(const ContainerFilter& filter) override {
    // id is the primary key: the range and the order come from its index.
    auto st = prepare(std::string("SELECT ") + kColumns +
                      " FROM containers WHERE id > ? AND (? = '' OR verdict = ?) ORDER BY id LIMIT ?");
    if (!st.ok()) return std::move(st).error();
    bind_text(st->get(), 1, filter.after_id);
    bind_text(st->get(), 2, filter.verdict);
    bind_text(st->get(), 3, filter.verdict);
    sqlite3_bind_int64(st->get(), 4, static_cast<sqlite3_int64>(std::min<std::size_t>(filter.limit, INT64_MAX)));
    std::vector<ContainerRecord> out;
    int rc = 0;
    while ((rc = sqlite3_step(st->get())) == SQLITE_ROW) out.push_back(read_record(st->get()));
    if (rc != SQLITE_DONE) return db_error(db_.get(), "listing containers");
    return out;
  }

  Status remove_container(const std::string& id) override {
    for (const char* sql : {"DELETE FROM containers WHERE id = ?", "DELETE FROM container_schedule WHERE id = ?"}) {
      auto st = prepare(sql);
      if (!st.ok()) return std::move(st).error();
      bind_text(st->get(), 1, id);
      if (sqlite3_step(st->get()) != SQLITE_DONE) return db_error(db_.get(), "removing container " + id);
    }
    return {};
  }

  Status put_schedule(const ScheduleState& s) override {
    auto st = prepare(
        "INSERT OR REPLACE INTO container_schedule(id, last_scan_ms, last_event_ms, failures) VALUES(?,?,?,?)");
    if (!st.ok()) return std::move(st).error();
    bind_text(st->get(), 1, s.container_id);
    sqlite3_bind_int64(st->get(), 2, s.last_scan_ms);
    sqlite3_bind_int64(st->get(), 3, s.last_event_ms);
    sqlite3_bind_int64(st->get(), 4, s.failures);
    if (sqlite3_step(st->get()) != SQLITE_DONE) return db_error(db_.get(), "storing schedule of " + s.container_id);
    return {};
  }

  Result<std::vector<ScheduleState>> list_schedule() override {
    auto st = prepare("SELECT id, last_scan_ms, last_event_ms, failures FROM container_schedule ORDER BY id");
    if (!st.ok()) return std::move(st).error();
    std::vector<ScheduleState> out;
    int rc = 0;
    while ((rc = sqlite3_step(st->get())) == SQLITE_ROW) {
      ScheduleState s;
      s.container_id = column_text(st->get(), 0);
      s.last_scan_ms = sqlite3_column_int64(st->get(), 1);
      s.last_event_ms = sqlite3_column_int64(st->get(), 2);
      s.failures = static_cast<std::uint32_t>(sqlite3_column_int64(st->get(), 3));
      out.push_back(std::move(s));
    }
    if (rc != SQLITE_DONE) return db_error(db_.get(), "listing the schedule");
    return out;
  }

 private:
  Result<Stmt> prepare(const std::string& sql) {
    sqlite3_stmt* raw = nullptr;
    if (sqlite3_prepare_v2(db_.get(), sql.c_str(), -1, &raw, nullptr) != SQLITE_OK) return db_error(db_.get(), sql);
    return Stmt(raw);
  }

  Db db_;  // opened SQLITE_OPEN_FULLMUTEX: calls are serialised by SQLite
};

}  // namespace

Result<std::unique_ptr<ContainerStore>> open_sqlite_container_store(const std::string& data_dir) {
  std::error_code ec;
  std::filesystem::create_directories(data_dir, ec);
  if (ec) return Error(ErrorCode::io_error, "container store: creating " + data_dir + ": " + ec.message());
  const std::string path = data_dir + "/store.db";
  sqlite3* raw = nullptr;
  const int rc = sqlite3_open_v2(path.c_str(), &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                                 nullptr);
  Db db(raw);
  if (rc != SQLITE_OK) return db_error(raw, "opening " + path);
  sqlite3_busy_timeout(db.get(), 10000);
  for (const char* sql : {"PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL", kSchema}) {
    char* message = nullptr;
    if (sqlite3_exec(db.get(), sql, nullptr, nullptr, &message) != SQLITE_OK) {
      std::string text = message != nullptr ? message : "unknown error";
      sqlite3_free(message);
      return Error(ErrorCode::io_error, "container store: " + path + ": " + text);
    }
  }
  return std::unique_ptr<ContainerStore>(new SqliteContainerStore(std::move(db)));
}

}  // namespace hashsieve::store
