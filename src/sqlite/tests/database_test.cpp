#include "hashsieve/sqlite/database.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <limits>
#include <optional>
#include <vector>

namespace hashsieve::sqlite {
namespace {

namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "hashsieve-sqlite-XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data());
  }
  ~TempDir() { fs::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

OpenOptions options(Sync sync = Sync::normal) {
  OpenOptions o;
  o.label = "test db";
  o.synchronous = sync;
  return o;
}

Database open_ok(const std::string& path, const OpenOptions& o = options()) {
  auto db = Database::open(path, o);
  EXPECT_TRUE(db.ok()) << db.error().message();
  return std::move(db).value();
}

std::int64_t count_rows(const Database& db) {
  auto st = db.prepare("SELECT COUNT(*) FROM t");
  EXPECT_TRUE(st.ok());
  auto row = st->step();
  EXPECT_TRUE(row.ok() && *row);
  return st->int64(0);
}

std::string pragma(const Database& db, const std::string& name) {
  auto st = db.prepare("PRAGMA " + name);
  EXPECT_TRUE(st.ok()) << st.error().message();
  auto row = st->step();
  EXPECT_TRUE(row.ok() && *row);
  return st->text(0);
}

TEST(SqliteDatabase, OpenCreatesTheDirectoryAndAppliesThePragmas) {
  TempDir dir;
  struct Case {
    std::string name;
    Sync sync;
    bool foreign_keys;
    std::string want_sync, want_fk;
  };
  const Case cases[] = {
      {"normal", Sync::normal, false, "1", "0"},
      {"full with foreign keys", Sync::full, true, "2", "1"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const std::string path = dir.path() + "/" + c.name + "/sub/x.db";
    auto o = options(c.sync);
    o.foreign_keys = c.foreign_keys;
    Database db = open_ok(path, o);
    EXPECT_TRUE(fs::exists(path));
    EXPECT_EQ(db.path(), path);
    EXPECT_EQ(pragma(db, "journal_mode"), "wal");
    EXPECT_EQ(pragma(db, "synchronous"), c.want_sync);
    EXPECT_EQ(pragma(db, "foreign_keys"), c.want_fk);
    ASSERT_TRUE(db.set_synchronous(c.sync == Sync::full ? Sync::normal : Sync::full).ok());
    EXPECT_EQ(pragma(db, "synchronous"), c.want_sync == "1" ? "2" : "1");
  }
}

TEST(SqliteDatabase, OpenErrorsNameTheLabelThePathAndSqlitesMessage) {
  TempDir dir;
  const std::string not_a_db = dir.path() + "/garbage.db";
  std::ofstream(not_a_db) << std::string(4096, 'x');
  const std::string a_directory = dir.path() + "/adir";
  fs::create_directories(a_directory);
  struct Case {
    std::string name, path, want_path, want_message;
  };
  const Case cases[] = {
      {"not a database", not_a_db, not_a_db, "file is not a database"},
      {"a directory", a_directory, a_directory, "unable to open database file"},
      {"uncreatable directory", "/proc/hashsieve-no-such-dir/x.db", "/proc/hashsieve-no-such-dir",
       "creating"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    auto db = Database::open(c.path, options());
    ASSERT_FALSE(db.ok());
    const std::string& m = db.error().message();
    EXPECT_EQ(db.error().code(), ErrorCode::io_error);
    EXPECT_EQ(m.rfind("test db: ", 0), 0u) << m;
    EXPECT_NE(m.find(c.want_path), std::string::npos) << m;
    EXPECT_NE(m.find(c.want_message), std::string::npos) << m;
  }
}

TEST(SqliteDatabase, StatementErrorsNameTheSqlThePathAndSqlitesMessage) {
  TempDir dir;
  Database db = open_ok(dir.path() + "/x.db");
  ASSERT_TRUE(db.exec("CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE)").ok());
  ASSERT_TRUE(db.exec("INSERT INTO t(name) VALUES('a')").ok());
  struct Case {
    std::string name, sql;
    std::string want_message;
  };
  const Case cases[] = {
      {"prepare: syntax", "SELEC name FROM t", "near \"SELEC\": syntax error"},
      {"prepare: no such table", "SELECT * FROM nope", "no such table: nope"},
      {"step: constraint", "INSERT INTO t(name) VALUES('a')", "UNIQUE constraint failed: t.name"},
      {"step: NOT NULL", "INSERT INTO t(name) VALUES(NULL)", "NOT NULL constraint failed: t.name"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    auto st = db.prepare(c.sql);
    Status out = st.ok() ? st->run() : Status(std::move(st).error());
    ASSERT_FALSE(out.ok());
    const std::string& m = out.error().message();
    EXPECT_EQ(out.error().code(), ErrorCode::io_error);
    EXPECT_EQ(m, "test db: " + db.path() + ": " + c.sql + ": " + c.want_message);
  }
  // exec names its SQL too; a long one is cut.
  const std::string long_sql = "INSERT INTO t(name) VALUES('a') -- " + std::string(500, 'x');
  auto e = db.exec(long_sql);
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.error().message().find("INSERT INTO t(name) VALUES('a')"), std::string::npos);
  EXPECT_NE(e.error().message().find("UNIQUE constraint failed"), std::string::npos);
  EXPECT_LT(e.error().message().size(), 400u);
  // Nothing to prepare, and a row from run(), are errors of the caller.
  auto empty = db.prepare("  -- nothing");
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.error().code(), ErrorCode::invalid_argument);
  auto select = db.prepare("SELECT name FROM t");
  ASSERT_TRUE(select.ok());
  auto ran = select->run();
  ASSERT_FALSE(ran.ok());
  EXPECT_EQ(ran.error().code(), ErrorCode::internal);
}

TEST(SqliteDatabase, BindAndReadEveryKindOfValue) {
  TempDir dir;
  Database db = open_ok(dir.path() + "/x.db");
  ASSERT_TRUE(db.exec("CREATE TABLE v(i INTEGER, s TEXT)").ok());
  struct Case {
    std::string name;
    std::optional<std::int64_t> i;  // nullopt = NULL
    std::string s;
    bool u64;  // bind through bind_u64
    std::uint64_t u;
    std::int64_t want_i;
  };
  const std::string nul_bytes("a\0b\xff", 4);
  const Case cases[] = {
      {"zero and empty", 0, "", false, 0, 0},
      {"int64 min", std::numeric_limits<std::int64_t>::min(), "x", false, 0,
       std::numeric_limits<std::int64_t>::min()},
      {"int64 max", std::numeric_limits<std::int64_t>::max(), "y", false, 0,
       std::numeric_limits<std::int64_t>::max()},
      {"NUL and invalid UTF-8 kept", 7, nul_bytes, false, 0, 7},
      {"u64 in range", std::nullopt, "u", true, 42, 42},
      {"u64 clamped", std::nullopt, "c", true, std::numeric_limits<std::uint64_t>::max(),
       std::numeric_limits<std::int64_t>::max()},
      {"NULL", std::nullopt, "n", false, 0, 0},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    ASSERT_TRUE(db.exec("DELETE FROM v").ok());
    auto ins = db.prepare("INSERT INTO v(i, s) VALUES(?1, ?2)");
    ASSERT_TRUE(ins.ok());
    if (c.u64) {
      ins->bind_u64(1, c.u);
    } else if (c.i) {
      ins->bind(1, *c.i);
    } else {
      ins->bind_null(1);
    }
    ins->bind(2, c.s);
    ASSERT_TRUE(ins->run().ok());
    EXPECT_EQ(db.changes(), 1);
    EXPECT_GT(db.last_insert_rowid(), 0);
    auto sel = db.prepare("SELECT i, s FROM v");
    ASSERT_TRUE(sel.ok());
    std::vector<std::string> texts;
    ASSERT_TRUE(sel->for_each_row([&](const Statement& row) {
                     EXPECT_EQ(row.is_null(0), !c.u64 && !c.i);
                     EXPECT_EQ(row.int64(0), c.want_i);
                     texts.push_back(row.text(1));
                   })
                    .ok());
    EXPECT_EQ(texts, std::vector<std::string>{c.s});
  }
}

TEST(SqliteDatabase, ResetRunsAStatementAgainAndForEachRowStopsAtAnError) {
  TempDir dir;
  Database db = open_ok(dir.path() + "/x.db");
  ASSERT_TRUE(db.exec("CREATE TABLE t(n INTEGER)").ok());
  auto ins = db.prepare("INSERT INTO t(n) VALUES(?)");
  ASSERT_TRUE(ins.ok());
  for (int i = 0; i < 5; ++i) {
    ins->reset();
    ASSERT_TRUE(ins->bind(1, std::int64_t{i}).run().ok());
  }
  EXPECT_EQ(count_rows(db), 5);
  auto sel = db.prepare("SELECT n FROM t ORDER BY n");
  ASSERT_TRUE(sel.ok());
  int seen = 0;
  auto st = sel->for_each_row([&](const Statement& row) -> Status {
    ++seen;
    if (row.int64(0) == 2) return Error(ErrorCode::parse_error, "bad row 2");
    return {};
  });
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().message(), "bad row 2");
  EXPECT_EQ(seen, 3);
}

TEST(SqliteDatabase, TransactionsCommitOrRollBack) {
  TempDir dir;
  Database db = open_ok(dir.path() + "/x.db");
  ASSERT_TRUE(db.exec("CREATE TABLE t(n INTEGER UNIQUE)").ok());
  auto insert = [&](std::int64_t n) -> Status {
    auto st = db.prepare("INSERT INTO t(n) VALUES(?)");
    if (!st.ok()) return std::move(st).error();
    return st->bind(1, n).run();
  };
  struct Case {
    std::string name;
    std::vector<std::int64_t> inserts;  // in one transaction
    bool fail_after;                    // the body returns an error after its inserts
    bool want_ok;
    std::int64_t want_rows;  // in the table afterwards
  };
  const Case cases[] = {
      {"commit", {1, 2}, false, true, 2},
      {"the body fails", {3, 4}, true, false, 2},
      {"a statement fails halfway", {5, 1}, false, false, 2},  // 1 already exists
      {"commit again", {6}, false, true, 3},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    auto out = db.transaction([&]() -> Result<int> {
      for (auto n : c.inserts) {
        if (auto st = insert(n); !st.ok()) return std::move(st).error();
      }
      if (c.fail_after) return Error(ErrorCode::invalid_argument, "the body gave up");
      return 1;
    });
    EXPECT_EQ(out.ok(), c.want_ok);
    if (!out.ok()) {
      EXPECT_NE(out.error().message().find(c.fail_after ? "the body gave up" : "UNIQUE"), std::string::npos);
    }
    EXPECT_EQ(count_rows(db), c.want_rows);
  }
  // A Status body, and a read transaction, work the same way.
  EXPECT_FALSE(db.transaction([&]() -> Status {
                   if (auto st = insert(7); !st.ok()) return st;
                   return Error(ErrorCode::io_error, "no");
                 }).ok());
  EXPECT_EQ(count_rows(db), 3);
  auto n = db.read_transaction([&]() -> Result<std::int64_t> { return count_rows(db); });
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 3);
  // Nothing is left open: a new transaction begins.
  EXPECT_TRUE(db.transaction([&]() { return insert(8); }).ok());
  EXPECT_EQ(count_rows(db), 4);
}

TEST(SqliteDatabase, AWriterWaitsTheBusyTimeoutForAnotherConnectionsLock) {
  TempDir dir;
  const std::string path = dir.path() + "/x.db";
  Database a = open_ok(path);
  ASSERT_TRUE(a.exec("CREATE TABLE t(n INTEGER)").ok());
  auto o = options();
  o.busy_timeout = std::chrono::milliseconds(200);
  Database b = open_ok(path, o);
  ASSERT_TRUE(a.exec("BEGIN IMMEDIATE").ok());
  const auto start = std::chrono::steady_clock::now();
  auto blocked = b.transaction([&]() { return b.exec("INSERT INTO t(n) VALUES(1)"); });
  const auto waited = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(blocked.ok());
  EXPECT_NE(blocked.error().message().find("database is locked"), std::string::npos)
      << blocked.error().message();
  EXPECT_NE(blocked.error().message().find(path), std::string::npos);
  EXPECT_GE(waited, std::chrono::milliseconds(150));
  ASSERT_TRUE(a.exec("COMMIT").ok());
  EXPECT_TRUE(b.transaction([&]() { return b.exec("INSERT INTO t(n) VALUES(1)"); }).ok());
}

}  // namespace
}  // namespace hashsieve::sqlite
