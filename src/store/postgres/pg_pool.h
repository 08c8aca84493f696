// libpq plumbing shared by the PostgreSQL backends (private): a bounded,
// thread-safe connection pool, prepared statements by name per connection,
// COPY for bulk rows, and the mapping of server errors to ErrorCode.
//
// A lost connection (server restarted or gone) is ErrorCode::unavailable.
// The pool then drops every idle connection (they are connections to the
// same dead server) and the next call connects afresh, so a caller's retry
// after the server is back succeeds.
#pragma once

#include <libpq-fe.h>

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_set>
#include <vector>

#include "hashsieve/core/result.h"

namespace hashsieve::store::pg {

using Param = std::optional<std::string>;  // nullopt = SQL NULL; values in text format

class PgResult {
 public:
  explicit PgResult(PGresult* r) : r_(r) {}
  PgResult(PgResult&& o) noexcept : r_(o.r_) { o.r_ = nullptr; }
  PgResult& operator=(PgResult&& o) noexcept {
    std::swap(r_, o.r_);
    return *this;
  }
  PgResult(const PgResult&) = delete;
  PgResult& operator=(const PgResult&) = delete;
  ~PgResult() { PQclear(r_); }

  int rows() const { return PQntuples(r_); }
  std::uint64_t affected() const;
  bool is_null(int row, int col) const { return PQgetisnull(r_, row, col) != 0; }
  std::string text(int row, int col) const {
    return std::string(PQgetvalue(r_, row, col), static_cast<std::size_t>(PQgetlength(r_, row, col)));
  }
  // Integer and boolean columns; a value that does not parse is parse_error
  // (a schema this build does not understand), never a silent zero.
  Result<std::int64_t> int64(int row, int col) const;
  bool boolean(int row, int col) const { return PQgetvalue(r_, row, col)[0] == 't'; }
  // A BYTEA column (text format, hex output: "\\x..."): the stored bytes.
  Result<std::string> bytes(int row, int col) const;

 private:
  PGresult* r_;
};

// One server connection with the names of the statements prepared on it.
class Connection {
 public:
  Connection(PGconn* conn, std::uint64_t epoch) : conn_(conn), epoch_(epoch) {}
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  ~Connection() { PQfinish(conn_); }

  // Simple-protocol statement(s) without parameters (BEGIN, migrations).
  Result<PgResult> exec(const std::string& sql);
  // A named prepared statement, prepared on this connection at first use.
  Result<PgResult> run(const char* name, const char* sql, const std::vector<Param>& params);
  // COPY ... FROM STDIN in text format; `data` already escaped (copy_field).
  Status copy_in(const std::string& copy_sql, const std::string& data);

  bool healthy() const { return PQstatus(conn_) == CONNECTION_OK; }
  bool idle() const { return PQtransactionStatus(conn_) == PQTRANS_IDLE; }
  std::uint64_t epoch() const { return epoch_; }

 private:
  Error error(const PGresult* res, const std::string& what) const;

  PGconn* conn_;
  std::uint64_t epoch_;
  std::unordered_set<std::string> prepared_;
};

// A byte string as a BYTEA parameter or COPY value in text format ("\\x" and
// hex): any bytes, NUL and invalid UTF-8 included.
std::string bytea_text(const std::string& bytes);
// Whether `s` is well-formed UTF-8 (no overlongs, surrogates or > U+10FFFF).
bool is_utf8(const std::string& s);
// `s` with each byte that does not start a well-formed UTF-8 sequence
// replaced by U+FFFD (one per byte, so a well-formed substring of `s` is a
// substring of the result): the searchable text of a byte path.
std::string lossy_utf8(const std::string& s);

// Appends `value` to a COPY text row, escaped, followed by `sep` ('\t' or '\n').
void copy_field(std::string& row, const std::string& value, char sep);

class Pool : public std::enable_shared_from_this<Pool> {
 public:
  // Connects once (to fail fast on a bad conninfo) and applies the
  // migrations under an advisory lock.
  static Result<std::shared_ptr<Pool>> open(const std::string& conninfo, std::size_t size);

  // A connection for one operation; it goes back to the pool when the lease
  // ends, or is closed when it broke.
  class Lease {
   public:
    Lease(std::shared_ptr<Pool> pool, std::unique_ptr<Connection> conn)
        : pool_(std::move(pool)), conn_(std::move(conn)) {}
    Lease(Lease&&) noexcept = default;
    Lease& operator=(Lease&&) noexcept = default;
    ~Lease();
    Connection& operator*() { return *conn_; }
    Connection* operator->() { return conn_.get(); }

   private:
    std::shared_ptr<Pool> pool_;
    std::unique_ptr<Connection> conn_;
  };

  Result<Lease> acquire();

  Pool(std::string conninfo, std::size_t size) : conninfo_(std::move(conninfo)), size_(size == 0 ? 1 : size) {}

 private:
  Result<std::unique_ptr<Connection>> connect(std::uint64_t epoch);
  void release(std::unique_ptr<Connection> conn);

  const std::string conninfo_;
  const std::size_t size_;
  std::mutex mutex_;
  std::condition_variable freed_;
  std::vector<std::unique_ptr<Connection>> idle_;
  std::size_t open_ = 0;    // idle + leased
  std::uint64_t epoch_ = 0; // bumped when a connection is found broken
};

Status migrate(Connection& conn);

// Runs `body(Connection&)` in one transaction (BEGIN/COMMIT; ROLLBACK on an
// error). Returns body's Result.
template <typename F>
auto in_transaction(Pool& pool, F&& body) -> decltype(body(std::declval<Connection&>())) {
  auto lease = pool.acquire();
  if (!lease.ok()) return std::move(lease).error();
  Connection& c = **lease;
  if (auto b = c.exec("BEGIN"); !b.ok()) return std::move(b).error();
  auto out = body(c);
  if (!out.ok()) {
    (void)c.exec("ROLLBACK");
    return out;
  }
  if (auto done = c.exec("COMMIT"); !done.ok()) {
    (void)c.exec("ROLLBACK");
    return std::move(done).error();
  }
  return out;
}

template <typename F>
auto with_connection(Pool& pool, F&& body) -> decltype(body(std::declval<Connection&>())) {
  auto lease = pool.acquire();
  if (!lease.ok()) return std::move(lease).error();
  return body(**lease);
}

}  // namespace hashsieve::store::pg

namespace hashsieve {
class Clock;
namespace store {
class JobStore;
class ContainerStore;
// postgres_job_store.cpp, postgres_container_store.cpp
std::unique_ptr<JobStore> make_postgres_job_store(std::shared_ptr<pg::Pool> pool, const Clock& clock);
std::unique_ptr<ContainerStore> make_postgres_container_store(std::shared_ptr<pg::Pool> pool);
}  // namespace store
}  // namespace hashsieve
