// The connection pool, statements and error mapping of pg_pool.h.
#include "pg_pool.h"

#include <charconv>
#include <cstring>

namespace hashsieve::store::pg {
namespace {

// Migrations, numbered, from migrations/NNNN_name.sql (generated into
// pg_migrations.inc at configure time).
struct Migration {
  int version;
  const char* name;
  const char* sql;
};
constexpr Migration kMigrations[] = {
#include "pg_migrations.inc"
};

// Serialises migrations of one database across processes; any constant
// unique to hashsieve will do ("hsmg").
constexpr std::int64_t kMigrationLock = 0x68736d67;

void ignore_notice(void*, const char*) {}

// SQLSTATE classes that mean "the server is (maybe temporarily) not there"
// or "try again": connection exceptions (08), shutdown/cannot-connect-now
// (57P0x), serialization failure and deadlock (40001, 40P01).
bool retryable_state(const char* state) {
  if (state == nullptr) return false;
  return std::strncmp(state, "08", 2) == 0 || std::strncmp(state, "57P0", 4) == 0 ||
         std::strcmp(state, "40001") == 0 || std::strcmp(state, "40P01") == 0;
}

}  // namespace

std::uint64_t PgResult::affected() const {
  const char* n = PQcmdTuples(r_);
  std::uint64_t v = 0;
  if (n != nullptr) std::from_chars(n, n + std::strlen(n), v);
  return v;
}

Result<std::int64_t> PgResult::int64(int row, int col) const {
  const char* p = PQgetvalue(r_, row, col);
  const std::size_t n = static_cast<std::size_t>(PQgetlength(r_, row, col));
  std::int64_t v = 0;
  auto [end, ec] = std::from_chars(p, p + n, v);
  if (ec != std::errc() || end != p + n) {
    return Error(ErrorCode::parse_error, "postgres store: column " + std::string(PQfname(r_, col)) +
                                             ": not an integer: '" + std::string(p, n) + "'");
  }
  return v;
}

Result<std::string> PgResult::bytes(int row, int col) const {
  const char* p = PQgetvalue(r_, row, col);
  const std::size_t n = static_cast<std::size_t>(PQgetlength(r_, row, col));
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  if (n < 2 || p[0] != '\\' || p[1] != 'x' || n % 2 != 0) {
    return Error(ErrorCode::parse_error, "postgres store: column " + std::string(PQfname(r_, col)) +
                                             ": not hex bytea output (bytea_output must be 'hex')");
  }
  std::string out;
  out.reserve((n - 2) / 2);
  for (std::size_t i = 2; i < n; i += 2) {
    const int hi = nibble(p[i]);
    const int lo = nibble(p[i + 1]);
    if (hi < 0 || lo < 0) {
      return Error(ErrorCode::parse_error, "postgres store: column " + std::string(PQfname(r_, col)) +
                                               ": bad hex digit in bytea output");
    }
    out += static_cast<char>(hi * 16 + lo);
  }
  return out;
}

std::string bytea_text(const std::string& bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "\\x";
  out.reserve(2 + bytes.size() * 2);
  for (unsigned char b : bytes) {
    out += kHex[b >> 4];
    out += kHex[b & 15];
  }
  return out;
}

namespace {
// The length of the well-formed UTF-8 sequence at s[i], 0 when there is none
// (Unicode table 3-7).
std::size_t utf8_sequence(const std::string& s, std::size_t i) {
  const auto b = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = b(i);
  if (c < 0x80) return 1;
  std::size_t len = 0;
  unsigned char lo = 0x80, hi = 0xBF;
  if (c >= 0xC2 && c <= 0xDF) {
    len = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    len = 3;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    len = 4;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  if (i + len > s.size()) return 0;
  if (b(i + 1) < lo || b(i + 1) > hi) return 0;
  for (std::size_t k = 2; k < len; ++k) {
    if (b(i + k) < 0x80 || b(i + k) > 0xBF) return 0;
  }
  return len;
}
}  // namespace

bool is_utf8(const std::string& s) {
  for (std::size_t i = 0; i < s.size();) {
    const std::size_t n = utf8_sequence(s, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

std::string lossy_utf8(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size();) {
    const std::size_t n = utf8_sequence(s, i);
    if (n == 0) {
      out += "\xEF\xBF\xBD";  // U+FFFD
      ++i;
    } else {
      out.append(s, i, n);
      i += n;
    }
  }
  return out;
}

Error Connection::error(const PGresult* res, const std::string& what) const {
  const char* state = res != nullptr ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : nullptr;
  std::string message = res != nullptr ? PQresultErrorMessage(res) : "";
  if (message.empty()) message = PQerrorMessage(conn_);
  while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) message.pop_back();
  const bool lost = !healthy() || res == nullptr || retryable_state(state);
  return Error(lost ? ErrorCode::unavailable : ErrorCode::io_error,
               "postgres store: " + what + ": " + message + (state != nullptr ? std::string(" [") + state + "]" : ""));
}

Result<PgResult> Connection::exec(const std::string& sql) {
  PGresult* raw = PQexec(conn_, sql.c_str());
  PgResult owned(raw);
  const ExecStatusType st = raw != nullptr ? PQresultStatus(raw) : PGRES_FATAL_ERROR;
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
    return error(raw, sql.size() > 60 ? sql.substr(0, 60) + "..." : sql);
  }
  return owned;
}

Result<PgResult> Connection::run(const char* name, const char* sql, const std::vector<Param>& params) {
  if (prepared_.count(name) == 0) {
    PGresult* raw = PQprepare(conn_, name, sql, static_cast<int>(params.size()), nullptr);
    PgResult owned(raw);
    if (raw == nullptr || PQresultStatus(raw) != PGRES_COMMAND_OK) {
      return error(raw, std::string("preparing ") + name);
    }
    prepared_.insert(name);
  }
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const Param& p : params) {
    // libpq takes C strings: a NUL would silently cut the value short.
    if (p && p->find('\0') != std::string::npos) {
      return Error(ErrorCode::invalid_argument, std::string("postgres store: ") + name + ": a value contains a NUL byte");
    }
    values.push_back(p ? p->c_str() : nullptr);
  }
  PGresult* raw = PQexecPrepared(conn_, name, static_cast<int>(values.size()), values.data(), nullptr, nullptr, 0);
  PgResult owned(raw);
  const ExecStatusType st = raw != nullptr ? PQresultStatus(raw) : PGRES_FATAL_ERROR;
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) return error(raw, name);
  return owned;
}

Status Connection::copy_in(const std::string& copy_sql, const std::string& data) {
  {
    PGresult* raw = PQexec(conn_, copy_sql.c_str());
    PgResult owned(raw);
    if (raw == nullptr || PQresultStatus(raw) != PGRES_COPY_IN) return error(raw, copy_sql);
  }
  // PQputCopyData takes an int length; send in chunks.
  constexpr std::size_t kChunk = 1 << 20;
  for (std::size_t off = 0; off < data.size(); off += kChunk) {
    const std::size_t n = std::min(kChunk, data.size() - off);
    if (PQputCopyData(conn_, data.data() + off, static_cast<int>(n)) != 1) return error(nullptr, "sending COPY rows");
  }
  if (PQputCopyEnd(conn_, nullptr) != 1) return error(nullptr, "ending COPY");
  Status out;
  while (PGresult* raw = PQgetResult(conn_)) {
    PgResult owned(raw);
    if (PQresultStatus(raw) != PGRES_COMMAND_OK && out.ok()) out = error(raw, copy_sql);
  }
  return out;
}

void copy_field(std::string& row, const std::string& value, char sep) {
  for (char c : value) {
    switch (c) {
      case '\\': row += "\\\\"; break;
      case '\t': row += "\\t"; break;
      case '\n': row += "\\n"; break;
      case '\r': row += "\\r"; break;
      default: row += c;
    }
  }
  row += sep;
}

Pool::Lease::~Lease() {
  if (conn_ && pool_) pool_->release(std::move(conn_));
}

Result<std::unique_ptr<Connection>> Pool::connect(std::uint64_t epoch) {
  PGconn* raw = PQconnectdb(conninfo_.c_str());
  auto conn = std::make_unique<Connection>(raw, epoch);
  if (raw == nullptr) return Error(ErrorCode::internal, "postgres store: out of memory");
  if (PQstatus(raw) != CONNECTION_OK) {
    std::string message = PQerrorMessage(raw);
    while (!message.empty() && message.back() == '\n') message.pop_back();
    return Error(ErrorCode::unavailable, "postgres store: connecting: " + message);
  }
  PQsetNoticeProcessor(raw, ignore_notice, nullptr);
  return conn;
}

Result<Pool::Lease> Pool::acquire() {
  std::unique_lock lock(mutex_);
  freed_.wait(lock, [&] { return !idle_.empty() || open_ < size_; });
  if (!idle_.empty()) {
    auto conn = std::move(idle_.back());
    idle_.pop_back();
    return Lease(shared_from_this(), std::move(conn));
  }
  ++open_;
  const std::uint64_t epoch = epoch_;
  lock.unlock();
  auto conn = connect(epoch);
  if (!conn.ok()) {
    lock.lock();
    --open_;
    freed_.notify_one();
    return std::move(conn).error();
  }
  return Lease(shared_from_this(), std::move(conn).value());
}

void Pool::release(std::unique_ptr<Connection> conn) {
  // A connection left inside a transaction (an error between BEGIN and
  // ROLLBACK that could not roll back) is not reusable either.
  if (conn->healthy() && !conn->idle()) (void)conn->exec("ROLLBACK");
  std::lock_guard lock(mutex_);
  if (!conn->healthy() || !conn->idle()) {
    // The server went away: the idle ones are as dead; reconnect lazily.
    if (conn->epoch() == epoch_) {
      ++epoch_;
      open_ -= idle_.size();
      idle_.clear();
    }
    --open_;
  } else if (conn->epoch() != epoch_) {
    --open_;  // opened before the failure; may be stale
  } else {
    idle_.push_back(std::move(conn));
  }
  freed_.notify_all();
}

Result<std::shared_ptr<Pool>> Pool::open(const std::string& conninfo, std::size_t size) {
  auto pool = std::make_shared<Pool>(conninfo, size);
  auto lease = pool->acquire();
  if (!lease.ok()) return std::move(lease).error();
  if (auto st = migrate(**lease); !st.ok()) return std::move(st).error();
  return pool;
}

Status migrate(Connection& c) {
  if (auto b = c.exec("BEGIN"); !b.ok()) return std::move(b).error();
  auto body = [&]() -> Status {
    // The lock is released at COMMIT/ROLLBACK; a second process starting at
    // the same time waits here and then sees the migrations applied.
    if (auto l = c.exec("SELECT pg_advisory_xact_lock(" + std::to_string(kMigrationLock) + ")"); !l.ok()) {
      return std::move(l).error();
    }
    if (auto t = c.exec("CREATE TABLE IF NOT EXISTS schema_migrations(version INTEGER PRIMARY KEY,"
                        " name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())");
        !t.ok()) {
      return std::move(t).error();
    }
    auto cur = c.exec("SELECT COALESCE(MAX(version), 0) FROM schema_migrations");
    if (!cur.ok()) return std::move(cur).error();
    auto current = cur->int64(0, 0);
    if (!current.ok()) return std::move(current).error();
    const int newest = kMigrations[std::size(kMigrations) - 1].version;
    if (*current > newest) {
      return Error(ErrorCode::unsupported, "postgres store: the database has schema version " +
                                               std::to_string(*current) + ", this build knows up to " +
                                               std::to_string(newest));
    }
    for (const Migration& m : kMigrations) {
      if (m.version <= *current) continue;
      if (auto r = c.exec(m.sql); !r.ok()) {
        return std::move(r).error().with_context("applying migration " + std::string(m.name));
      }
      auto rec = c.run("hs_migration_applied", "INSERT INTO schema_migrations(version, name) VALUES($1, $2)",
                       {std::to_string(m.version), std::string(m.name)});
      if (!rec.ok()) return std::move(rec).error();
    }
    return {};
  }();
  if (!body.ok()) {
    (void)c.exec("ROLLBACK");
    return body;
  }
  if (auto done = c.exec("COMMIT"); !done.ok()) return std::move(done).error();
  return {};
}

}  // namespace hashsieve::store::pg
