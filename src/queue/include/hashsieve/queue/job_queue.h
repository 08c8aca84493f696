// A durable work queue with at-least-once delivery (ADR 0009).
//
// The semantics are AMQP's, so a RabbitMQ backend (issue 7) can implement the
// same interface:
//   publish        basic.publish with publisher confirms: durable on return
//   publish_batch  n x basic.publish, then one wait for all their confirms
//   receive        basic.consume with prefetch; the Delivery holds a lease
//                  (visibility timeout). An unacked delivery whose lease
//                  expires (its worker died) is delivered again, like a
//                  consumer channel closing.
//   ack            basic.ack, sent only after the result is committed
//   retry(delay)   ack + publish to a delay queue (per-message TTL that
//                  dead-letters back to the work queue), counting attempts
//   dead_letter    basic.reject(requeue=false) to the dead-letter exchange;
//                  retry() dead-letters by itself once attempts reach
//                  max_attempts
//   release        basic.nack(requeue=true): back to ready, attempt not counted
// Delivery is at least once: a message can be delivered twice (a lease
// expired while its worker was still alive, a publish was retried), so
// consumers are idempotent, keyed by the message key (the job id, itself
// unique per repository and manifest digest).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "hashsieve/core/clock.h"
#include "hashsieve/core/result.h"

namespace hashsieve::queue {

struct Message {
  std::string key;   // idempotency key, e.g. "job:42"; not unique in the queue
  std::string body;  // opaque to the queue
};

struct Delivery {
  std::string receipt;          // opaque handle for ack/retry/release (AMQP: the delivery tag)
  std::string key;
  std::string body;
  std::uint32_t attempt = 1;    // 1 on first delivery; +1 per retry() and per lease expiry
  std::int64_t published_ms = 0;
  std::int64_t lease_expires_ms = 0;
};

struct QueueStats {
  std::uint64_t ready = 0;      // deliverable now
  std::uint64_t in_flight = 0;  // leased to a consumer
  std::uint64_t delayed = 0;    // waiting for a retry delay
  std::uint64_t dead = 0;       // dead-lettered
  // What a "queue depth" gauge shows: work not yet finished.
  std::uint64_t depth() const { return ready + in_flight + delayed; }
  bool operator==(const QueueStats&) const = default;
};

struct DeadLetter {
  std::string key;
  std::string body;
  std::uint32_t attempts = 0;
  std::string reason;
  std::int64_t dead_at_ms = 0;
};

enum class Durability {
  // fsync on every commit (SQLite synchronous=FULL): a published message
  // survives power loss. The default: publish is "durable on return".
  fsync,
  // WAL with synchronous=NORMAL: survives a crash of the process, not of the
  // machine (the last commits may be lost on power failure). Faster.
  process_crash,
};

struct QueueOptions {
  std::chrono::milliseconds lease{std::chrono::minutes(10)};  // visibility timeout of a delivery
  std::uint32_t max_attempts = 5;  // deliveries before dead-lettering
  Durability durability = Durability::fsync;
  const Clock* clock = nullptr;    // null: system_clock()
  // How often a blocked receive() looks again for ready messages published
  // by another process (within one process publish wakes receivers at once).
  std::chrono::milliseconds poll_interval{std::chrono::milliseconds(200)};
};

class JobQueue {
 public:
  virtual ~JobQueue() = default;

  // Appends a message; it is stored durably (per Durability) on return.
  virtual Status publish(const Message& message) = 0;
  // Appends every message, durably on return like publish, at the cost of one
  // commit (SQLite: one transaction, one fsync) or one wait for publisher
  // confirms (RabbitMQ) for the whole batch (ADR 0017). On error none of
  // them counts as published: some may still have been stored (RabbitMQ
  // confirms per message), so a retry can duplicate them, which at-least-once
  // consumers absorb. An empty batch is a no-op.
  virtual Status publish_batch(const std::vector<Message>& messages) = 0;

  // The oldest ready message (or one whose lease expired, or whose retry
  // delay passed), leased to the caller for options.lease; waits up to
  // `wait` for one to appear; nullopt when none did. A message whose lease
  // expired with attempt == max_attempts is dead-lettered instead.
  virtual Result<std::optional<Delivery>> receive(std::chrono::milliseconds wait) = 0;

  // Removes the message. `failed_precondition`-like misuse (the lease was
  // lost: it expired and the message went to another consumer, or the
  // receipt is unknown) is ErrorCode::not_found; the caller's work may then
  // be repeated by the new holder, which is why consumers are idempotent.
  virtual Status ack(const Delivery& delivery) = 0;

  // Makes the message deliverable again after `delay`, counting the attempt.
  // When the delivery's attempt already reached max_attempts the message is
  // dead-lettered with `reason` instead. Returns true when dead-lettered.
  virtual Result<bool> retry(const Delivery& delivery, std::chrono::milliseconds delay,
                             const std::string& reason) = 0;

  // Moves the message to the dead letters now (a permanent failure).
  virtual Status dead_letter(const Delivery& delivery, const std::string& reason) = 0;

  // Gives the message back at once without counting an attempt (graceful
  // shutdown of a worker that had not started, or stopped, its work).
  virtual Status release(const Delivery& delivery) = 0;

  // Extends the lease to now + options.lease (a heartbeat for long work).
  virtual Status extend_lease(const Delivery& delivery) = 0;

  virtual Result<QueueStats> stats() = 0;
  // Newest first.
  virtual Result<std::vector<DeadLetter>> list_dead(std::size_t limit) = 0;
};

// The embedded backend: <data_dir>/queue.db (SQLite, WAL). Safe to share
// between threads and between processes (several processes may consume one
// queue: a receive is one IMMEDIATE transaction).
Result<std::unique_ptr<JobQueue>> open_sqlite_queue(const std::string& data_dir, QueueOptions options = {});

}  // namespace hashsieve::queue
