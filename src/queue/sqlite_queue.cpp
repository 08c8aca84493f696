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
#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <random>

#include "hashsieve/queue/job_queue.h"
#include "hashsieve/sqlite/database.h"

namespace hashsieve::queue {
namespace {

using sqlite::Database;
using sqlite::Statement;

constexpr int kSchemaVersion = 1;

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

class SqliteQueue final : public JobQueue {
 public:
  SqliteQueue(Database db, QueueOptions options)
      : db_(std::move(db)), options_(options), clock_(options.clock != nullptr ? *options.clock : system_clock()),
        rng_(std::random_device{}()) {}

  Status publish(const Message& message) override {
    {
      std::lock_guard lock(mutex_);
      auto st = db_.prepare("INSERT INTO messages(key, body, state, attempt, visible_ms, lease_token, published_ms,"
                            " reason, dead_ms) VALUES(?, ?, 'ready', 0, ?, 0, ?, '', 0)");
      if (!st.ok()) return std::move(st).error();
      const std::int64_t now = clock_.now_ms();
      st->bind(1, message.key);
      st->bind(2, message.body);
      st->bind(3, now);
      st->bind(4, now);
      // A single statement outside BEGIN is its own transaction, committed
      // (and synced, per Durability) when step returns.
      if (auto done = st->run(); !done.ok()) return std::move(done).error().with_context("publishing " + message.key);
    }
    wake_.notify_one();
    return {};
  }

  Status publish_batch(const std::vector<Message>& messages) override {
    if (messages.empty()) return {};
    {
      std::lock_guard lock(mutex_);
      auto done = db_.transaction([&]() -> Result<bool> {
        auto st = db_.prepare("INSERT INTO messages(key, body, state, attempt, visible_ms, lease_token, published_ms,"
                              " reason, dead_ms) VALUES(?, ?, 'ready', 0, ?, 0, ?, '', 0)");
        if (!st.ok()) return std::move(st).error();
        const std::int64_t now = clock_.now_ms();
        for (const auto& m : messages) {
          st->reset();
          st->bind(1, m.key);
          st->bind(2, m.body);
          st->bind(3, now);
          st->bind(4, now);
          if (auto ran = st->run(); !ran.ok()) return std::move(ran).error().with_context("publishing " + m.key);
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
    auto st = db_.prepare("DELETE FROM messages WHERE id = ? AND lease_token = ? AND state = 'leased'");
    if (!st.ok()) return std::move(st).error();
    st->bind(1, r->id);
    st->bind(2, r->token);
    if (auto done = st->run(); !done.ok()) return std::move(done).error().with_context("acknowledging " + delivery.key);
    if (db_.changes() == 0) return lease_lost(delivery, "ack");
    return {};
  }

  Result<bool> retry(const Delivery& delivery, std::chrono::milliseconds delay, const std::string& reason) override {
    auto r = parse_receipt(delivery.receipt);
    if (!r.ok()) return std::move(r).error();
    Result<bool> out = false;
    {
      std::lock_guard lock(mutex_);
      out = db_.transaction([&]() -> Result<bool> {
        auto attempt = leased_attempt(*r);
        if (!attempt.ok()) return std::move(attempt).error();
        if (!attempt->has_value()) return lease_lost(delivery, "retry");
        const std::int64_t now = clock_.now_ms();
        if (**attempt >= options_.max_attempts) {
          auto st = make_dead(r->id, "gave up after " + std::to_string(**attempt) + " attempts: " + reason, now);
          if (!st.ok()) return std::move(st).error();
          return true;
        }
        auto st = db_.prepare("UPDATE messages SET state = 'ready', visible_ms = ?, lease_token = 0, reason = ?"
                              " WHERE id = ?");
        if (!st.ok()) return std::move(st).error();
        st->bind(1, now + std::max<std::int64_t>(0, delay.count()));
        st->bind(2, reason);
        st->bind(3, r->id);
        if (auto done = st->run(); !done.ok()) return std::move(done).error().with_context("retrying " + delivery.key);
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
    auto out = db_.transaction([&]() -> Result<bool> {
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
      auto st = db_.prepare("UPDATE messages SET state = 'ready', visible_ms = ?, lease_token = 0,"
                            " attempt = MAX(attempt - 1, 0) WHERE id = ? AND lease_token = ? AND state = 'leased'");
      if (!st.ok()) return std::move(st).error();
      st->bind(1, clock_.now_ms());
      st->bind(2, r->id);
      st->bind(3, r->token);
      if (auto done = st->run(); !done.ok()) return std::move(done).error().with_context("releasing " + delivery.key);
      if (db_.changes() == 0) return lease_lost(delivery, "release");
    }
    wake_.notify_one();
    return {};
  }

  Status extend_lease(const Delivery& delivery) override {
    auto r = parse_receipt(delivery.receipt);
    if (!r.ok()) return std::move(r).error();
    std::lock_guard lock(mutex_);
    auto st = db_.prepare("UPDATE messages SET visible_ms = ? WHERE id = ? AND lease_token = ? AND state = 'leased'");
    if (!st.ok()) return std::move(st).error();
    st->bind(1, clock_.now_ms() + options_.lease.count());
    st->bind(2, r->id);
    st->bind(3, r->token);
    if (auto done = st->run(); !done.ok()) {
      return std::move(done).error().with_context("extending the lease of " + delivery.key);
    }
    if (db_.changes() == 0) return lease_lost(delivery, "extend lease");
    return {};
  }

  Result<QueueStats> stats() override {
    std::lock_guard lock(mutex_);
    auto st = db_.prepare("SELECT"
                          " COALESCE(SUM(state = 'ready' AND visible_ms <= ?1), 0),"
                          " COALESCE(SUM(state = 'leased'), 0),"
                          " COALESCE(SUM(state = 'ready' AND visible_ms > ?1), 0),"
                          " COALESCE(SUM(state = 'dead'), 0) FROM messages");
    if (!st.ok()) return std::move(st).error();
    st->bind(1, clock_.now_ms());
    auto row = st->step();
    if (!row.ok()) return std::move(row).error().with_context("counting messages");
    if (!*row) return Error(ErrorCode::io_error, "queue: " + db_.path() + ": counting messages: no row");
    QueueStats s;
    s.ready = static_cast<std::uint64_t>(st->int64(0));
    s.in_flight = static_cast<std::uint64_t>(st->int64(1));
    s.delayed = static_cast<std::uint64_t>(st->int64(2));
    s.dead = static_cast<std::uint64_t>(st->int64(3));
    return s;
  }

  Result<std::vector<DeadLetter>> list_dead(std::size_t limit) override {
    std::lock_guard lock(mutex_);
    auto st = db_.prepare("SELECT key, body, attempt, reason, dead_ms FROM messages WHERE state = 'dead'"
                          " ORDER BY dead_ms DESC, id DESC LIMIT ?");
    if (!st.ok()) return std::move(st).error();
    st->bind_u64(1, limit);
    std::vector<DeadLetter> out;
    auto done = st->for_each_row([&](const Statement& row) {
      DeadLetter d;
      d.key = row.text(0);
      d.body = row.text(1);
      d.attempts = static_cast<std::uint32_t>(row.int64(2));
      d.reason = row.text(3);
      d.dead_at_ms = row.int64(4);
      out.push_back(std::move(d));
    });
    if (!done.ok()) return std::move(done).error().with_context("listing dead letters");
    return out;
  }

 private:
  static Error lease_lost(const Delivery& d, const char* what) {
    return Error(ErrorCode::not_found, std::string("queue: ") + what + " of " + d.key +
                                           ": lease lost (expired and redelivered, or already settled)");
  }

  // The delivery count of a message still leased under `r`, or nullopt.
  Result<std::optional<std::uint32_t>> leased_attempt(const Receipt& r) {
    auto st = db_.prepare("SELECT attempt FROM messages WHERE id = ? AND lease_token = ? AND state = 'leased'");
    if (!st.ok()) return std::move(st).error();
    auto row = st->bind(1, r.id).bind(2, r.token).step();
    if (!row.ok()) return std::move(row).error().with_context("reading a lease");
    if (!*row) return std::optional<std::uint32_t>();
    return std::optional<std::uint32_t>(static_cast<std::uint32_t>(st->int64(0)));
  }

  Status make_dead(std::int64_t id, const std::string& reason, std::int64_t now) {
    auto st = db_.prepare("UPDATE messages SET state = 'dead', lease_token = 0, reason = ?, dead_ms = ? WHERE id = ?");
    if (!st.ok()) return std::move(st).error();
    st->bind(1, reason);
    st->bind(2, now);
    st->bind(3, id);
    if (auto done = st->run(); !done.ok()) return std::move(done).error().with_context("dead-lettering");
    return {};
  }

  // One receive attempt; called with mutex_ held.
  Result<std::optional<Delivery>> try_receive() {
    return db_.transaction([&]() -> Result<std::optional<Delivery>> {
      const std::int64_t now = clock_.now_ms();
      auto pick = db_.prepare(
          "SELECT id, key, body, state, attempt, published_ms FROM messages"
          " WHERE state IN ('ready', 'leased') AND visible_ms <= ? ORDER BY visible_ms, id LIMIT 1");
      if (!pick.ok()) return std::move(pick).error();
      for (;;) {
        pick->reset();
        pick->bind(1, now);
        auto row = pick->step();
        if (!row.ok()) return std::move(row).error().with_context("picking a message");
        if (!*row) return std::optional<Delivery>();
        Delivery d;
        const std::int64_t id = pick->int64(0);
        d.key = pick->text(1);
        d.body = pick->text(2);
        const bool expired_lease = pick->text(3) == "leased";
        const auto attempt = static_cast<std::uint32_t>(pick->int64(4));
        d.published_ms = pick->int64(5);
        pick->reset();
        if (expired_lease && attempt >= options_.max_attempts) {
          // Its consumer died max_attempts times: a poison message (e.g. one
          // that crashes the worker) must not loop forever.
          auto st = make_dead(id, "lease expired on attempt " + std::to_string(attempt) + " of " +
                                      std::to_string(options_.max_attempts), now);
          if (!st.ok()) return std::move(st).error();
          continue;
        }
        const auto token = static_cast<std::int64_t>(rng_() >> 1) + 1;  // > 0; 0 means "no lease"
        auto take = db_.prepare("UPDATE messages SET state = 'leased', attempt = attempt + 1, visible_ms = ?,"
                                " lease_token = ? WHERE id = ?");
        if (!take.ok()) return std::move(take).error();
        d.lease_expires_ms = now + options_.lease.count();
        take->bind(1, d.lease_expires_ms);
        take->bind(2, token);
        take->bind(3, id);
        if (auto done = take->run(); !done.ok()) return std::move(done).error().with_context("leasing " + d.key);
        d.attempt = attempt + 1;
        d.receipt = std::to_string(id) + ":" + std::to_string(token);
        return std::optional<Delivery>(std::move(d));
      }
    });
  }

  std::mutex mutex_;
  std::condition_variable wake_;
  Database db_;
  QueueOptions options_;
  const Clock& clock_;
  std::mt19937_64 rng_;
};

}  // namespace

Result<std::unique_ptr<JobQueue>> open_sqlite_queue(const std::string& data_dir, QueueOptions options) {
  if (options.max_attempts == 0) return Error(ErrorCode::invalid_argument, "queue: max_attempts must be at least 1");
  if (options.lease.count() <= 0) return Error(ErrorCode::invalid_argument, "queue: the lease must be positive");
  auto db = Database::open(data_dir + "/queue.db",
                           {.label = "queue",
                            .synchronous = options.durability == Durability::fsync ? sqlite::Sync::full
                                                                                   : sqlite::Sync::normal});
  if (!db.ok()) return std::move(db).error();
  if (auto st = db->exec(kSchema); !st.ok()) return std::move(st).error();
  {
    auto get = db->prepare("SELECT value FROM meta WHERE key = 'schema_version'");
    if (!get.ok()) return std::move(get).error();
    auto row = get->step();
    if (!row.ok()) return std::move(row).error();
    if (*row) {
      const std::string v = get->text(0);
      if (v != std::to_string(kSchemaVersion)) {
        return Error(ErrorCode::unsupported, "queue: " + db->path() + " has schema version " + v +
                                                 ", this build reads " + std::to_string(kSchemaVersion));
      }
    } else if (auto st = db->exec("INSERT OR IGNORE INTO meta(key, value) VALUES('schema_version', '" +
                                  std::to_string(kSchemaVersion) + "')");
               !st.ok()) {
      return std::move(st).error();
    }
  }
  return std::unique_ptr<JobQueue>(new SqliteQueue(std::move(db).value(), options));
}

}  // namespace hashsieve::queue
