// Owning handles for SQLite objects, so every exit path closes them.
#pragma once

#include <sqlite3.h>

#include <memory>
#include <string>

#include "hashsieve/core/result.h"

namespace hashsieve::refset {

struct SqliteCloser {
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
struct SqliteFinalizer {
  void operator()(sqlite3_stmt* st) const { sqlite3_finalize(st); }
};
using SqliteDb = std::unique_ptr<sqlite3, SqliteCloser>;
using SqliteStmt = std::unique_ptr<sqlite3_stmt, SqliteFinalizer>;

inline Error sqlite_error(sqlite3* db, const std::string& what) {
  return Error(ErrorCode::io_error, what + ": " + (db != nullptr ? sqlite3_errmsg(db) : "out of memory"));
}

inline Result<SqliteDb> sqlite_open(const std::string& path, int flags) {
  sqlite3* raw = nullptr;
  const int rc = sqlite3_open_v2(path.c_str(), &raw, flags, nullptr);
  SqliteDb db(raw);
  if (rc != SQLITE_OK) return sqlite_error(raw, "opening " + path);
  return db;
}

inline Result<SqliteStmt> sqlite_prepare(sqlite3* db, const char* sql) {
  sqlite3_stmt* raw = nullptr;
  if (sqlite3_prepare_v2(db, sql, -1, &raw, nullptr) != SQLITE_OK) return sqlite_error(db, sql);
  return SqliteStmt(raw);
}

inline Status sqlite_exec(sqlite3* db, const char* sql) {
  char* message = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &message) != SQLITE_OK) {
    std::string text = message != nullptr ? message : "unknown error";
    sqlite3_free(message);
    return Error(ErrorCode::io_error, std::string(sql) + ": " + text);
  }
  return {};
}

}  // namespace hashsieve::refset
