#include "hashsieve/sqlite/database.h"

#include <sqlite3.h>

#include <algorithm>
#include <filesystem>
#include <limits>

namespace hashsieve::sqlite {
namespace {

// Schemas are long; an error names enough of the SQL to find it.
constexpr std::size_t kMaxSqlInError = 200;

std::string short_sql(std::string_view sql) {
  if (sql.size() <= kMaxSqlInError) return std::string(sql);
  return std::string(sql.substr(0, kMaxSqlInError)) + "...";
}

}  // namespace

void Statement::Finalizer::operator()(sqlite3_stmt* st) const { sqlite3_finalize(st); }
void Database::Closer::operator()(sqlite3* db) const { sqlite3_close_v2(db); }

Statement& Statement::bind(int index, std::int64_t value) {
  sqlite3_bind_int64(st_.get(), index, static_cast<sqlite3_int64>(value));
  return *this;
}

Statement& Statement::bind(int index, std::string_view text) {
  // SQLite takes an int length; a value of 2 GiB is past its own limit anyway
  // (SQLITE_TOOBIG from step).
  sqlite3_bind_text64(st_.get(), index, text.data(), static_cast<sqlite3_uint64>(text.size()),
                      SQLITE_TRANSIENT, SQLITE_UTF8);
  return *this;
}

Statement& Statement::bind_u64(int index, std::uint64_t value) {
  constexpr auto kMax = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
  return bind(index, static_cast<std::int64_t>(std::min(value, kMax)));
}

Statement& Statement::bind_null(int index) {
  sqlite3_bind_null(st_.get(), index);
  return *this;
}

Result<bool> Statement::step() {
  const int rc = sqlite3_step(st_.get());
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return error();
}

Error Statement::error() const {
  return Error(ErrorCode::io_error, where_ + ": " + short_sql(sql_) + ": " + sqlite3_errmsg(db_));
}

Status Statement::run() {
  auto row = step();
  if (!row.ok()) return std::move(row).error();
  if (*row) return Error(ErrorCode::internal, where_ + ": " + short_sql(sql_) + ": returned a row");
  return {};
}

void Statement::reset() { sqlite3_reset(st_.get()); }

std::int64_t Statement::int64(int column) const { return sqlite3_column_int64(st_.get(), column); }

std::string Statement::text(int column) const {
  const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(st_.get(), column));
  return p == nullptr ? std::string()
                      : std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(st_.get(), column)));
}

bool Statement::is_null(int column) const { return sqlite3_column_type(st_.get(), column) == SQLITE_NULL; }

Result<Database> Database::open(const std::string& path, const OpenOptions& options) {
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(parent, ec);
    if (ec)
      return Error(ErrorCode::io_error,
                   options.label + ": creating " + parent.string() + ": " + ec.message());
  }
  sqlite3* raw = nullptr;
  const int rc = sqlite3_open_v2(path.c_str(), &raw,
                                 SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, nullptr);
  Database db(raw, path, options.label);
  if (rc != SQLITE_OK) {
    return Error(ErrorCode::io_error, options.label + ": opening " + path + ": " +
                                          (raw != nullptr ? sqlite3_errmsg(raw) : "out of memory"));
  }
  sqlite3_busy_timeout(raw, static_cast<int>(std::min<std::chrono::milliseconds::rep>(
                                options.busy_timeout.count(), std::numeric_limits<int>::max())));
  if (auto st = db.exec("PRAGMA journal_mode=WAL"); !st.ok()) return std::move(st).error();
  if (auto st = db.set_synchronous(options.synchronous); !st.ok()) return std::move(st).error();
  if (options.foreign_keys) {
    if (auto st = db.exec("PRAGMA foreign_keys=ON"); !st.ok()) return std::move(st).error();
  }
  return db;
}

Result<Statement> Database::prepare(std::string_view sql) const {
  sqlite3_stmt* raw = nullptr;
  if (sqlite3_prepare_v2(db_.get(), sql.data(), static_cast<int>(sql.size()), &raw, nullptr) != SQLITE_OK) {
    return error(short_sql(sql));
  }
  // Only white space or comments: SQLite gives no statement and no error.
  if (raw == nullptr)
    return Error(ErrorCode::invalid_argument,
                 label_ + ": " + path_ + ": no SQL statement in '" + short_sql(sql) + "'");
  return Statement(db_.get(), label_ + ": " + path_, raw, std::string(sql));
}

Status Database::exec(std::string_view sql) const {
  const std::string text(sql);  // sqlite3_exec wants a NUL-terminated string
  char* message = nullptr;
  if (sqlite3_exec(db_.get(), text.c_str(), nullptr, nullptr, &message) != SQLITE_OK) {
    std::string why = message != nullptr ? message : sqlite3_errmsg(db_.get());
    sqlite3_free(message);
    return Error(ErrorCode::io_error, label_ + ": " + path_ + ": " + short_sql(sql) + ": " + why);
  }
  return {};
}

Status Database::set_synchronous(Sync sync) const {
  return exec(sync == Sync::full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL");
}

std::int64_t Database::last_insert_rowid() const { return sqlite3_last_insert_rowid(db_.get()); }
std::int64_t Database::changes() const { return sqlite3_changes(db_.get()); }

Error Database::error(std::string_view what) const {
  return Error(ErrorCode::io_error,
               label_ + ": " + path_ + ": " + std::string(what) + ": " + sqlite3_errmsg(db_.get()));
}

}  // namespace hashsieve::sqlite
