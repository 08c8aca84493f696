// The embedded queue backend: <data-dir>/queue.db, SQLite in WAL mode.
//
// Schema (version 1):
//   meta(key PRIMARY KEY, value)                                  schema_version
//   messages(id, key, body, state, attempt, visible_ms, lease_token,
//            published_ms, reason, dead_ms)
// state: 'ready' (deliverable once visible_ms <= now; later = delayed),
//        'leased' (visible_ms = lease expiry), 'dead'.
// attempt counts deliveries. Every state change is one IMMEDIATE transaction,
// so several processes may share the file: SQLite's write lock serialises
// them, and a lease is identified by (id, lease_token), a random 64-bit
// token per delivery, so an ack from a consumer whose lease expired and was
// handed to another is refused instead of removing the other's message.
#include <sqlite3.h>

#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <random>

#include "hashsieve/queue/job_queue.h"

namespace hashsieve::queue {
namespace {

struct Closer {
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
struct Finalizer {
  void operator()(sqlite3_stmt* st) const { sqlite3_finalize(st); }
};
using Db = std::unique_ptr<sqlite3, Closer>;
using Stmt = std::unique_ptr<sqlite3_stmt, Finalizer>;

constexpr int kSchemaVersion = 1;

Error db_error(sqlite3* db, const std::string& what) {
  return Error(ErrorCode::io_error, "queue: " + what + ": " + (db != nullptr ? sqlite3_errmsg(db) : "out of memory"));
}

Status exec(sqlite3* db, const char* sql) {
  char* message = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &message) != SQLITE_OK) {
    std::string text = message != nullptr ? message : "unknown error";
    sqlite3_free(message);
    return Error(ErrorCode::io_error, std::string("queue: ") + sql + ": " + text);
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
    "CREATE TABLE IF NOT EXISTS messages("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL, body TEXT NOT NULL,"
    "  state TEXT NOT NULL, attempt INTEGER NOT NULL, visible_ms INTEGER NOT NULL,"
    "  lease_token INTEGER NOT NULL, published_ms INTEGER NOT NULL,"
    "  reason TEXT NOT NULL, dead_ms INTEGER NOT NULL);"
    "CREATE INDEX IF NOT EXISTS messages_due ON messages(state, visible_ms, id);";

// A receipt is "<id>:<lease token>".
struct Receipt {
  std::int64_t id = 0;
  std::int64_t token = 0;
};

Result<Receipt> parse_receipt(const std::string& text) {
  const auto colon = text.find(':');
  Receipt r;
  try {
    if (colon == std::string::npos) throw std::invalid_argument("no colon");
    std::size_t used = 0;
    r.id = std::stoll(text.substr(0, colon), &used);
    if (used != colon) throw std::invalid_argument("id");
    const std::string tok = text.substr(colon + 1);
    r.token = std::stoll(tok, &used);
    if (used != tok.size()) throw std::invalid_argument("token");
  } catch (const std::exception&) {
    return Error(ErrorCode::invalid_argument, "queue: malformed receipt '" + text + "'");
  }
  return r;
}

// Runs `body` inside BEGIN IMMEDIATE ... COMMIT, rolling back on error.
template <typename F>
auto in_transaction(sqlite3* db, F&& body) -> decltype(body()) {
  if (auto st = exec(db, "BEGIN IMMEDIATE"); !st.ok()) return std::move(st).error();
  auto out = body();
  if (!out.ok()) {
    (void)exec(db, "ROLLBACK");
    return out;
  }
  if (auto c = exec(db, "COMMIT"); !c.ok()) {
    (void)exec(db, "ROLLBACK");
    return std::move(c).error();
  }
  return out;
}

class SqliteQueue final : public JobQueue {
 public:
  SqliteQueue(Db db, QueueOptions options)
      : db_(std::move(db)), options_(options), clock_(options.clock != nullptr ? *options.clock : system_clock()),
        rng_(std::random_device{}()) {}

  Status publish(const Message& message) override {
    {
      std::lock_guard lock(mutex_);
      auto st = prepare(db_.get(),
                        "INSERT INTO messages(key, body, state, attempt, visible_ms, lease_token, published_ms,"
                        " reason, dead_ms) VALUES(?, ?, 'ready', 0, ?, 0, ?, '', 0)");
      if (!st.ok()) return std::move(st).error();
      const std::int64_t now = clock_.now_ms();
      bind_text(st->get(), 1, message.key);
      bind_text(st->get(), 2, message.body);
      sqlite3_bind_int64(st->get(), 3, now);
      sqlite3_bind_int64(st->get(), 4, now);
      // A single statement outside BEGIN is its own transaction, committed
      // (and synced, per Durability) when step returns.
      if (sqlite3_step(st->get()) != SQLITE_DONE) return db_error(db_.get(), "publishing " + message.key);
    }
    wake_.notify_one();
    return {};
  }

  Status publish_batch(const std::vector<Message>& messages) override {
    if (messages.empty()) return {};
    {
      std::lock_guard lock(mutex_);
      auto done = in_transaction(db_.get(), [&]() -> Result<bool> {
        auto st = prepare(db_.get(),
                          "INSERT INTO messages(key, body, state, attempt, visible_ms, lease_token, published_ms,"
                          " reason, dead_ms) VALUES(?, ?, 'ready', 0, ?, 0, ?, '', 0)");
        if (!st.ok()) return std::move(st).error();
        const std::int64_t now = clock_.now_ms();
        for (const auto& m : messages) {
          sqlite3_reset(st->get());
          bind_text(st->get(), 1, m.key);
          bind_text(st->get(), 2, m.body);
          sqlite3_bind_int64(st->get(), 3, now);
          sqlite3_bind_int64(st->get(), 4, now);
          if (sqlite3_step(st->get()) != SQLITE_DONE) return db_error(db_.get(), "publishing " + m.key);
        }
        return true;
      });
      if (!done.ok()) return std::move(done).error().with_context("publishing a batch of " +
                                                                   std::to_string(messages.size()));
    }
    wake_.notify_all();
    return {};
  }

  Result<std::optional<Delivery>> receive(std::chrono::milliseconds wait) override {
    const auto deadline = std::chrono::steady_clock::now() + wait;
    std::unique_lock lock(mutex_);
    for (;;) {
      auto got = try_receive();
      if (!got.ok() || got->has_value()) return got;
      const auto now = std::chrono::steady_clock::now();
      if (now >= deadline) return std::optional<Delivery>();
      // Woken by a publish in this process; otherwise look again after the
      // poll interval (another process may have published, a lease or a
      // delay may have run out).
      wake_.wait_until(lock, std::min(deadline, now + options_.poll_interval));
    }
  }

  Status ack(const Delivery& delivery) override {
    auto r = parse_receipt(delivery.receipt);
    if (!r.ok()) return std::move(r).error();
    std::lock_guard lock(mutex_);
    auto st = prepare(db_.get(), "DELETE FROM messages WHERE id = ? AND lease_token = ? AND state = 'leased'");
    if (!st.ok()) return std::move(st).error();
    sqlite3_bind_int64(st->get(), 1, r->id);
    sqlite3_bind_int64(st->get(), 2, r->token);
    if (sqlite3_step(st->get()) != SQLITE_DONE) return db_error(db_.get(), "acknowledging " + delivery.key);
    if (sqlite3_changes(db_.get()) == 0) return lease_lost(delivery, "ack");
    return {};
  }

  Result<bool> retry(const Delivery& delivery, std::chrono::milliseconds delay, const std::string& reason) override {
    auto r = parse_receipt(delivery.receipt);
    if (!r.ok()) return std::move(r).error();
    Result<bool> out = false;
    {
      std::lock_guard lock(mutex_);
      out = in_transaction(db_.get(), [&]() -> Result<bool> {
        auto attempt = leased_attempt(*r);
        if (!attempt.ok()) return std::move(attempt).error();
        if (!attempt->has_value()) return lease_lost(delivery, "retry");
        const std::int64_t now = clock_.now_ms();
        if (**attempt >= options_.max_attempts) {
          auto st = make_dead(r->id, "gave up after " + std::to_string(**attempt) + " attempts: " + reason, now);
          if (!st.ok()) return std::move(st).error();
          return true;
        }
        auto st = prepare(db_.get(),
                          "UPDATE messages SET state = 'ready', visible_ms = ?, lease_token = 0, reason = ?"
                          " WHERE id = ?");
        if (!st.ok()) return std::move(st).error();
        sqlite3_bind_int64(st->get(), 1, now + std::max<std::int64_t>(0, delay.count()));
        bind_text(st->get(), 2, reason);
        sqlite3_bind_int64(st->get(), 3, r->id);
        if (sqlite3_step(st->get()) != SQLITE_DONE) return db_error(db_.get(), "retrying " + delivery.key);
        return false;
      });
    }
    wake_.notify_one();
    return out;
  }

  Status dead_letter(const Delivery& delivery, const std::string& reason) override {
    auto r = parse_receipt(delivery.receipt);
    if (!r.ok()) return std::move(r).error();
    std::lock_guard lock(mutex_);
    auto out = in_transaction(db_.get(), [&]() -> Result<bool> {
      auto attempt = leased_attempt(*r);
      if (!attempt.ok()) return std::move(attempt).error();
      if (!attempt->has_value()) return lease_lost(delivery, "dead-letter");
      auto st = make_dead(r->id, reason, clock_.now_ms());
      if (!st.ok()) return std::move(st).error();
      return true;
    });
    if (!out.ok()) return std::move(out).error();
    return {};
  }

  Status release(const Delivery& delivery) override {
    auto r = parse_receipt(delivery.receipt);
    if (!r.ok()) return std::move(r).error();
    {
      std::lock_guard lock(mutex_);
      // The attempt is given back: releasing is not a failure of the work.
      auto st = prepare(db_.get(),
                        "UPDATE messages SET state = 'ready', visible_ms = ?, lease_token = 0,"
                        " attempt = MAX(attempt - 1, 0) WHERE id = ? AND lease_token = ? AND state = 'leased'");
      if (!st.ok()) return std::move(st).error();
      sqlite3_bind_int64(st->get(), 1, clock_.now_ms());
      sqlite3_bind_int64(st->get(), 2, r->id);
      sqlite3_bind_int64(st->get(), 3, r->token);
      if (sqlite3_step(st->get()) != SQLITE_DONE) return db_error(db_.get(), "releasing " + delivery.key);
      if (sqlite3_changes(db_.get()) == 0) return lease_lost(delivery, "release");
    }
    wake_.notify_one();
    return {};
  }

  Status extend_lease(const Delivery& delivery) override {
    auto r = parse_receipt(delivery.receipt);
    if (!r.ok()) return std::move(r).error();
    std::lock_guard lock(mutex_);
    auto st = prepare(db_.get(),
                      "UPDATE messages SET visible_ms = ? WHERE id = ? AND lease_token = ? AND state = 'leased'");
    if (!st.ok()) return std::move(st).error();
    sqlite3_bind_int64(st->get(), 1, clock_.now_ms() + options_.lease.count());
    sqlite3_bind_int64(st->get(), 2, r->id);
    sqlite3_bind_int64(st->get(), 3, r->token);
    if (sqlite3_step(st->get()) != SQLITE_DONE) return db_error(db_.get(), "extending the lease of " + delivery.key);
    if (sqlite3_changes(db_.get()) == 0) return lease_lost(delivery, "extend lease");
    return {};
  }

  Result<QueueStats> stats() override {
    std::lock_guard lock(mutex_);
    auto st = prepare(db_.get(),
                      "SELECT"
                      " COALESCE(SUM(state = 'ready' AND visible_ms <= ?1), 0),"
                      " COALESCE(SUM(state = 'leased'), 0),"
                      " COALESCE(SUM(state = 'ready' AND visible_ms > ?1), 0),"
                      " COALESCE(SUM(state = 'dead'), 0) FROM messages");
    if (!st.ok()) return std::move(st).error();
    sqlite3_bind_int64(st->get(), 1, clock_.now_ms());
    if (sqlite3_step(st->get()) != SQLITE_ROW) return db_error(db_.get(), "counting messages");
    QueueStats s;
    s.ready = static_cast<std::uint64_t>(sqlite3_column_int64(st->get(), 0));
    s.in_flight = static_cast<std::uint64_t>(sqlite3_column_int64(st->get(), 1));
    s.delayed = static_cast<std::uint64_t>(sqlite3_column_int64(st->get(), 2));
    s.dead = static_cast<std::uint64_t>(sqlite3_column_int64(st->get(), 3));
    return s;
  }

  Result<std::vector<DeadLetter>> list_dead(std::size_t limit) override {
    std::lock_guard lock(mutex_);
    auto st = prepare(db_.get(),
                      "SELECT key, body, attempt, reason, dead_ms FROM messages WHERE state = 'dead'"
                      " ORDER BY dead_ms DESC, id DESC LIMIT ?");
    if (!st.ok()) return std::move(st).error();
    sqlite3_bind_int64(st->get(), 1, static_cast<sqlite3_int64>(std::min<std::size_t>(limit, INT64_MAX)));
    std::vector<DeadLetter> out;
    int rc;
    while ((rc = sqlite3_step(st->get())) == SQLITE_ROW) {
      DeadLetter d;
      d.key = column_text(st->get(), 0);
      d.body = column_text(st->get(), 1);
      d.attempts = static_cast<std::uint32_t>(sqlite3_column_int64(st->get(), 2));
      d.reason = column_text(st->get(), 3);
      d.dead_at_ms = sqlite3_column_int64(st->get(), 4);
      out.push_back(std::move(d));
    }
    if (rc != SQLITE_DONE) return db_error(db_.get(), "listing dead letters");
    return out;
  }

 private:
  static Error lease_lost(const Delivery& d, const char* what) {
    return Error(ErrorCode::not_found, std::string("queue: ") + what + " of " + d.key +
                                           ": lease lost (expired and redelivered, or already settled)");
  }

  // The delivery count of a message still leased under `r`, or nullopt.
  Result<std::optional<std::uint32_t>> leased_attempt(const Receipt& r) {
    auto st = prepare(db_.get(), "SELECT attempt FROM messages WHERE id = ? AND lease_token = ? AND state = 'leased'");
    if (!st.ok()) return std::move(st).error();
    sqlite3_bind_int64(st->get(), 1, r.id);
    sqlite3_bind_int64(st->get(), 2, r.token);
    const int rc = sqlite3_step(st->get());
    if (rc == SQLITE_DONE) return std::optional<std::uint32_t>();
    if (rc != SQLITE_ROW) return db_error(db_.get(), "reading a lease");
    return std::optional<std::uint32_t>(static_cast<std::uint32_t>(sqlite3_column_int64(st->get(), 0)));
  }

  Status make_dead(std::int64_t id, const std::string& reason, std::int64_t now) {
    auto st = prepare(db_.get(),
                      "UPDATE messages SET state = 'dead', lease_token = 0, reason = ?, dead_ms = ? WHERE id = ?");
    if (!st.ok()) return std::move(st).error();
    bind_text(st->get(), 1, reason);
    sqlite3_bind_int64(st->get(), 2, now);
    sqlite3_bind_int64(st->get(), 3, id);
    if (sqlite3_step(st->get()) != SQLITE_DONE) return db_error(db_.get(), "dead-lettering");
    return {};
  }

  // One receive attempt; called with mutex_ held.
  Result<std::optional<Delivery>> try_receive() {
    return in_transaction(db_.get(), [&]() -> Result<std::optional<Delivery>> {
      const std::int64_t now = clock_.now_ms();
      auto pick = prepare(db_.get(),
                          "SELECT id, key, body, state, attempt, published_ms FROM messages"
                          " WHERE state IN ('ready', 'leased') AND visible_ms <= ? ORDER BY visible_ms, id LIMIT 1");
      if (!pick.ok()) return std::move(pick).error();
      for (;;) {
        sqlite3_reset(pick->get());
        sqlite3_bind_int64(pick->get(), 1, now);
        const int rc = sqlite3_step(pick->get());
        if (rc == SQLITE_DONE) return std::optional<Delivery>();
        if (rc != SQLITE_ROW) return db_error(db_.get(), "picking a message");
        Delivery d;
        const std::int64_t id = sqlite3_column_int64(pick->get(), 0);
        d.key = column_text(pick->get(), 1);
        d.body = column_text(pick->get(), 2);
        const bool expired_lease = column_text(pick->get(), 3) == "leased";
        const auto attempt = static_cast<std::uint32_t>(sqlite3_column_int64(pick->get(), 4));
        d.published_ms = sqlite3_column_int64(pick->get(), 5);
        sqlite3_reset(pick->get());
        if (expired_lease && attempt >= options_.max_attempts) {
          // Its consumer died max_attempts times: a poison message (e.g. one
          // that crashes the worker) must not loop forever.
          auto st = make_dead(id, "lease expired on attempt " + std::to_string(attempt) + " of " +
                                      std::to_string(options_.max_attempts), now);
          if (!st.ok()) return std::move(st).error();
          continue;
        }
        const auto token = static_cast<std::int64_t>(rng_() >> 1) + 1;  // > 0; 0 means "no lease"
        auto take = prepare(db_.get(),
                            "UPDATE messages SET state = 'leased', attempt = attempt + 1, visible_ms = ?,"
                            " lease_token = ? WHERE id = ?");
        if (!take.ok()) return std::move(take).error();
        d.lease_expires_ms = now + options_.lease.count();
        sqlite3_bind_int64(take->get(), 1, d.lease_expires_ms);
        sqlite3_bind_int64(take->get(), 2, token);
        sqlite3_bind_int64(take->get(), 3, id);
        if (sqlite3_step(take->get()) != SQLITE_DONE) return db_error(db_.get(), "leasing " + d.key);
        d.attempt = attempt + 1;
        d.receipt = std::to_string(id) + ":" + std::to_string(token);
        return std::optional<Delivery>(std::move(d));
      }
    });
  }

  std::mutex mutex_;
  std::condition_variable wake_;
  Db db_;
  QueueOptions options_;
  const Clock& clock_;
  std::mt19937_64 rng_;
};

}  // namespace

Result<std::unique_ptr<JobQueue>> open_sqlite_queue(const std::string& data_dir, QueueOptions options) {
  if (options.max_attempts == 0) return Error(ErrorCode::invalid_argument, "queue: max_attempts must be at least 1");
  if (options.lease.count() <= 0) return Error(ErrorCode::invalid_argument, "queue: the lease must be positive");
  std::error_code ec;
  std::filesystem::create_directories(data_dir, ec);
  if (ec) return Error(ErrorCode::io_error, "queue: creating " + data_dir + ": " + ec.message());
  const std::string path = data_dir + "/queue.db";
  sqlite3* raw = nullptr;
  const int rc = sqlite3_open_v2(path.c_str(), &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                                 nullptr);
  Db db(raw);
  if (rc != SQLITE_OK) return db_error(raw, "opening " + path);
  sqlite3_busy_timeout(db.get(), 10000);
  const char* sync =
      options.durability == Durability::fsync ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL";
  for (const char* sql : {"PRAGMA journal_mode=WAL", sync, kSchema}) {
    if (auto st = exec(db.get(), sql); !st.ok()) return std::move(st).error().with_context(path);
  }
  auto get = prepare(db.get(), "SELECT value FROM meta WHERE key = 'schema_version'");
  if (!get.ok()) return std::move(get).error();
  if (sqlite3_step(get->get()) == SQLITE_ROW) {
    const std::string v = column_text(get->get(), 0);
    if (v != std::to_string(kSchemaVersion)) {
      return Error(ErrorCode::unsupported, "queue: " + path + " has schema version " + v + ", this build reads " +
                                               std::to_string(kSchemaVersion));
    }
  } else {
    const std::string sql =
        "INSERT OR IGNORE INTO meta(key, value) VALUES('schema_version', '" + std::to_string(kSchemaVersion) + "')";
    if (auto st = exec(db.get(), sql.c_str()); !st.ok()) return std::move(st).error();
  }
  get.value().reset();
  return std::unique_ptr<JobQueue>(new SqliteQueue(std::move(db), options));
}

}  // namespace hashsieve::queue
