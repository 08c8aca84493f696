// One SQLite adapter for every embedded database of hashsieve (the store's
// <data-dir>/store.db and the queue's <data-dir>/queue.db): RAII handles for
// the connection and its statements, binding and stepping, errors as
// hashsieve::Error, the pragmas every file is opened with, and IMMEDIATE
// write transactions. Nothing here knows a schema; each backend keeps its own
// tables and version checks.
//
// Errors are io_error (as the four hand-written wrappers this replaces had
// them) and read "<label>: <path>: <what>: <SQLite message>", where <what> is
// the statement's SQL for prepare/step/exec failures.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "hashsieve/core/result.h"

struct sqlite3;
struct sqlite3_stmt;

namespace hashsieve::sqlite {

// PRAGMA synchronous in WAL mode: normal syncs at checkpoints only (a power
// failure may lose the newest commits, never consistency); full syncs the
// WAL at every commit.
enum class Sync { normal, full };

struct OpenOptions {
  std::string label;  // who owns the file, first word of every error ("store", "queue")
  Sync synchronous = Sync::normal;
  bool foreign_keys = false;
  std::chrono::milliseconds busy_timeout{10000};  // waits for another process's write lock
};

class Database;

// A prepared statement. Indexes are SQLite's: parameters from 1 (or ?NNN),
// columns from 0. Bound text is copied, so temporaries are fine.
class Statement {
 public:
  Statement(Statement&&) noexcept = default;
  Statement& operator=(Statement&&) noexcept = default;
  ~Statement() = default;

  Statement& bind(int index, std::int64_t value);
  Statement& bind(int index, std::string_view text);
  Statement& bind(int index, const char* text) { return bind(index, std::string_view(text)); }
  Statement& bind(int index, const std::string& text) { return bind(index, std::string_view(text)); }
  // SQLite integers are signed: larger values are stored as INT64_MAX.
  Statement& bind_u64(int index, std::uint64_t value);
  Statement& bind_null(int index);

  // One step: true when a row is ready to read, false when the statement is done.
  Result<bool> step();
  // Steps a statement that returns no rows (INSERT, UPDATE, DELETE) to its end.
  Status run();
  // Steps to the end, calling on_row(*this) for every row; on_row returns
  // void or a Status (an error stops the walk and is returned).
  template <typename F>
  Status for_each_row(F&& on_row);
  // Makes the statement runnable again; bindings stay.
  void reset();

  std::int64_t int64(int column) const;
  std::string text(int column) const;  // "" for NULL; any bytes, NUL included
  bool is_null(int column) const;
  const std::string& sql() const { return sql_; }

 private:
  friend class Database;
  struct Finalizer {
    void operator()(sqlite3_stmt* st) const;
  };
  Statement(sqlite3* db, std::string where, sqlite3_stmt* st, std::string sql)
      : db_(db), where_(std::move(where)), st_(st), sql_(std::move(sql)) {}
  Error error() const;

  sqlite3* db_;        // the connection, for its error message
  std::string where_;  // "<label>: <path>"
  std::unique_ptr<sqlite3_stmt, Finalizer> st_;
  std::string sql_;
};

// One connection, opened SQLITE_OPEN_FULLMUTEX (calls from several threads
// are serialised by SQLite; callers that need several statements to be one
// unit still hold their own mutex or use a transaction).
class Database {
 public:
  // Opens (creating it and its directory if needed) the database at `path`
  // in WAL mode with the options' busy timeout, synchronous and foreign_keys.
  static Result<Database> open(const std::string& path, const OpenOptions& options);

  Database(Database&&) noexcept = default;
  Database& operator=(Database&&) noexcept = default;
  ~Database() = default;

  Result<Statement> prepare(std::string_view sql) const;
  // One or more statements without parameters (schema, pragmas, BEGIN).
  Status exec(std::string_view sql) const;
  Status set_synchronous(Sync sync) const;

  // BEGIN IMMEDIATE, body(), COMMIT. When body() fails or COMMIT does, the
  // transaction is rolled back and the error returned. body returns a
  // Result<T> or a Status.
  template <typename F>
  auto transaction(F&& body) const -> decltype(body());
  // BEGIN (deferred): one read snapshot across several statements.
  template <typename F>
  auto read_transaction(F&& body) const -> decltype(body());

  std::int64_t last_insert_rowid() const;
  std::int64_t changes() const;  // rows changed by the last INSERT, UPDATE or DELETE
  const std::string& path() const { return path_; }
  // "<label>: <path>: <what>: <SQLite's message for the last failure>".
  Error error(std::string_view what) const;

 private:
  struct Closer {
    void operator()(sqlite3* db) const;
  };
  Database(sqlite3* db, std::string path, std::string label)
      : db_(db), path_(std::move(path)), label_(std::move(label)) {}
  template <typename F>
  auto run_in(const char* begin, F&& body) const -> decltype(body());

  std::unique_ptr<sqlite3, Closer> db_;
  std::string path_;
  std::string label_;
};

template <typename F>
Status Statement::for_each_row(F&& on_row) {
  for (;;) {
    auto row = step();
    if (!row.ok()) return std::move(row).error();
    if (!*row) return {};
    if constexpr (std::is_void_v<decltype(on_row(*this))>) {
      on_row(*this);
    } else {
      if (auto st = on_row(*this); !st.ok()) return std::move(st).error();
    }
  }
}

template <typename F>
auto Database::run_in(const char* begin, F&& body) const -> decltype(body()) {
  if (auto st = exec(begin); !st.ok()) return std::move(st).error();
  auto out = body();
  if (!out.ok()) {
    // The body's error is what the caller needs; a failing ROLLBACK (the
    // transaction already ended) adds nothing to it.
    (void)exec("ROLLBACK");
    return out;
  }
  if (auto c = exec("COMMIT"); !c.ok()) {
    (void)exec("ROLLBACK");
    return std::move(c).error();
  }
  return out;
}

template <typename F>
auto Database::transaction(F&& body) const -> decltype(body()) {
  return run_in("BEGIN IMMEDIATE", std::forward<F>(body));
}

template <typename F>
auto Database::read_transaction(F&& body) const -> decltype(body()) {
  return run_in("BEGIN", std::forward<F>(body));
}

}  // namespace hashsieve::sqlite
