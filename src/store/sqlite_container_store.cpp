// The SQLite backend of the container store: tables of its own in
// <data-dir>/store.db (WAL), created if missing; the image store's schema
// and its meta version are untouched.
//   containers(id PRIMARY KEY, name, image, image_id, image_scan_id, scanned_at,
//              verdict, drifted_files, errors, result_json)
//   container_schedule(id PRIMARY KEY, last_scan_ms, last_event_ms, failures)
#include <algorithm>

#include "hashsieve/sqlite/database.h"
#include "hashsieve/store/container_store.h"

namespace hashsieve::store {
namespace {

using sqlite::Database;
using sqlite::Statement;

constexpr const char* kSchema =
    "CREATE TABLE IF NOT EXISTS containers("
    "  id TEXT PRIMARY KEY, name TEXT NOT NULL, image TEXT NOT NULL, image_id TEXT NOT NULL,"
    "  image_scan_id INTEGER NOT NULL, scanned_at TEXT NOT NULL, verdict TEXT NOT NULL,"
    "  drifted_files INTEGER NOT NULL, errors INTEGER NOT NULL, result_json TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS container_schedule("
    "  id TEXT PRIMARY KEY, last_scan_ms INTEGER NOT NULL, last_event_ms INTEGER NOT NULL,"
    "  failures INTEGER NOT NULL);";

constexpr const char* kColumns =
    "id, name, image, image_id, image_scan_id, scanned_at, verdict, drifted_files, errors, result_json";

ContainerRecord read_record(const Statement& st) {
  ContainerRecord r;
  r.id = st.text(0);
  r.name = st.text(1);
  r.image = st.text(2);
  r.image_id = st.text(3);
  r.image_scan_id = st.int64(4);
  r.scanned_at = st.text(5);
  r.verdict = st.text(6);
  r.drifted_files = static_cast<std::uint64_t>(st.int64(7));
  r.errors = static_cast<std::uint64_t>(st.int64(8));
  r.result_json = st.text(9);
  return r;
}

// Every row of `st` as a record.
Result<std::vector<ContainerRecord>> read_records(Statement& st) {
  std::vector<ContainerRecord> out;
  if (auto s = st.for_each_row([&](const Statement& row) { out.push_back(read_record(row)); }); !s.ok()) {
    return std::move(s).error();
  }
  return out;
}

class SqliteContainerStore final : public ContainerStore {
 public:
  explicit SqliteContainerStore(Database db) : db_(std::move(db)) {}

  Status put_container_result(const ContainerRecord& r) override {
    auto st = db_.prepare(std::string("INSERT OR REPLACE INTO containers(") + kColumns +
                          ") VALUES(?,?,?,?,?,?,?,?,?,?)");
    if (!st.ok()) return std::move(st).error();
    st->bind(1, r.id).bind(2, r.name).bind(3, r.image).bind(4, r.image_id).bind(5, r.image_scan_id);
    st->bind(6, r.scanned_at).bind(7, r.verdict).bind_u64(8, r.drifted_files).bind_u64(9, r.errors);
    st->bind(10, r.result_json);
    if (auto done = st->run(); !done.ok()) return std::move(done).error().with_context("storing container " + r.id);
    return {};
  }

  Result<std::optional<ContainerRecord>> get_container_result(const std::string& id) override {
    {
      auto exact = db_.prepare(std::string("SELECT ") + kColumns + " FROM containers WHERE id = ?");
      if (!exact.ok()) return std::move(exact).error();
      auto row = exact->bind(1, id).step();
      if (!row.ok()) return std::move(row).error().with_context("reading container " + id);
      if (*row) return std::optional<ContainerRecord>(read_record(*exact));
    }
    if (id.size() < 4) return Error(ErrorCode::invalid_argument, "container ID prefix '" + id + "' is shorter than 4");
    // Prefix match by range, so LIKE wildcards in `id` mean nothing.
    auto st = db_.prepare(std::string("SELECT ") + kColumns + " FROM containers WHERE id >= ? AND id < ? LIMIT 2");
    if (!st.ok()) return std::move(st).error();
    std::string upper = id;
    upper.push_back('\x7f');
    st->bind(1, id).bind(2, upper);
    auto found = read_records(*st);
    if (!found.ok()) return std::move(found).error().with_context("reading container " + id);
    if (found->empty()) return std::optional<ContainerRecord>();
    if (found->size() > 1) {
      return Error(ErrorCode::invalid_argument, "container ID prefix '" + id + "' matches several containers");
    }
    return std::optional<ContainerRecord>(std::move((*found)[0]));
  }

  Result<std::vector<ContainerRecord>> list_container_results(std::size_t limit) override {
    auto st = db_.prepare(std::string("SELECT ") + kColumns + " FROM containers ORDER BY scanned_at DESC, id LIMIT ?");
    if (!st.ok()) return std::move(st).error();
    st->bind_u64(1, limit);
    auto out = read_records(*st);
    if (!out.ok()) return std::move(out).error().with_context("listing containers");
    return out;
  }

  Result<std::vector<ContainerRecord>> list_containers(const ContainerFilter& filter) override {
    // id is the primary key: the range and the order come from its index.
    auto st = db_.prepare(std::string("SELECT ") + kColumns +
                          " FROM containers WHERE id > ?1 AND (?2 = '' OR verdict = ?2) ORDER BY id LIMIT ?3");
    if (!st.ok()) return std::move(st).error();
    st->bind(1, filter.after_id).bind(2, filter.verdict).bind_u64(3, filter.limit);
    auto out = read_records(*st);
    if (!out.ok()) return std::move(out).error().with_context("listing containers");
    return out;
  }

  Status remove_container(const std::string& id) override {
    for (const char* sql : {"DELETE FROM containers WHERE id = ?", "DELETE FROM container_schedule WHERE id = ?"}) {
      auto st = db_.prepare(sql);
      if (!st.ok()) return std::move(st).error();
      if (auto done = st->bind(1, id).run(); !done.ok()) {
        return std::move(done).error().with_context("removing container " + id);
      }
    }
    return {};
  }

  Status put_schedule(const ScheduleState& s) override {
    auto st = db_.prepare(
        "INSERT OR REPLACE INTO container_schedule(id, last_scan_ms, last_event_ms, failures) VALUES(?,?,?,?)");
    if (!st.ok()) return std::move(st).error();
    st->bind(1, s.container_id).bind(2, s.last_scan_ms).bind(3, s.last_event_ms).bind(4, std::int64_t{s.failures});
    if (auto done = st->run(); !done.ok()) {
      return std::move(done).error().with_context("storing schedule of " + s.container_id);
    }
    return {};
  }

  Result<std::vector<ScheduleState>> list_schedule() override {
    auto st = db_.prepare("SELECT id, last_scan_ms, last_event_ms, failures FROM container_schedule ORDER BY id");
    if (!st.ok()) return std::move(st).error();
    std::vector<ScheduleState> out;
    auto done = st->for_each_row([&](const Statement& row) {
      out.push_back(ScheduleState{row.text(0), row.int64(1), row.int64(2), static_cast<std::uint32_t>(row.int64(3))});
    });
    if (!done.ok()) return std::move(done).error().with_context("listing the schedule");
    return out;
  }

 private:
  Database db_;  // opened SQLITE_OPEN_FULLMUTEX: calls are serialised by SQLite
};

}  // namespace

Result<std::unique_ptr<ContainerStore>> open_sqlite_container_store(const std::string& data_dir) {
  auto db = Database::open(data_dir + "/store.db", {.label = "container store"});
  if (!db.ok()) return std::move(db).error();
  if (auto st = db->exec(kSchema); !st.ok()) return std::move(st).error();
  return std::unique_ptr<ContainerStore>(new SqliteContainerStore(std::move(db).value()));
}

}  // namespace hashsieve::store
