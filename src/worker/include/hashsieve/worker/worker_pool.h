// Scan workers over the job queue and the job store (ADR 0009).
//
// Enqueue (the webhook, the crawler, POST /v1/scans): enqueue_scan commits the
// job row, then publishes its message, then marks it published. A crash
// between the two leaves a queued, unpublished row that requeue_orphans
// publishes at start-up and periodically: no job is lost, and a duplicate
// message is harmless because processing is idempotent.
//
// A worker: receive -> load job -> (done/failed already: ack, no rescan) ->
// begin_attempt (fetching) -> resolve -> hashing -> matching -> save results
// -> done -> ack. unavailable/io_error/internal: retry with exponential backoff
// (job back to queued with the error), dead-lettered and failed after
// max_attempts. not_found, integrity_error, parse_error, unsupported,
// permission_denied, invalid_argument, limit_exceeded: failed, acked.
//
// A job-store outage (a job-store call returns unavailable: PostgreSQL
// restarting, a lost connection) is not the job's fault: the worker keeps
// the delivery unacked, extends its lease and repeats the call with backoff
// (store_retry_initial doubling to store_retry_max) until the store answers,
// so no attempt is counted and no job is dead-lettered by an outage. Only a
// stop past its deadline gives the delivery back (release, not counted). A
// worker never exits because the store is away (ADR 0018).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "hashsieve/core/clock.h"
#include "hashsieve/core/result.h"
#include "hashsieve/image/source.h"
#include "hashsieve/queue/job_queue.h"
#include "hashsieve/refset/catalog.h"
#include "hashsieve/scan/matcher.h"
#include "hashsieve/scan/scanner.h"
#include "hashsieve/scanners/external_scanner.h"
#include "hashsieve/store/job_store.h"
#include "hashsieve/store/store.h"

namespace hashsieve::worker {

// What every worker shares. Pointers are borrowed and must outlive the pool.
struct WorkerEnvironment {
  store::Store* store = nullptr;        // layer-facts cache (may be null: no cache, rescans re-download)
  store::JobStore* jobs = nullptr;      // required
  queue::JobQueue* queue = nullptr;     // required
  const std::vector<refset::LoadedRefset>* sets = nullptr;  // required (may be empty)
  const scan::PathIndex* paths = nullptr;                   // may be null
};

// The fingerprint of the loaded reference sets (names, classes, versions):
// recorded with each result; a result whose fingerprint differs is rescanned.
std::string refset_fingerprint(const std::vector<refset::LoadedRefset>& sets);

// What a result records as its fingerprint: the sets', and with third-party
// scanners on image scans also each scanner's name, engine version and
// signature version ("...;scanner:clamd/1.0.9/<db>"), so results of an older
// signature database, or of scans without the scanners, can be told apart.
std::string result_fingerprint(const std::vector<refset::LoadedRefset>& sets,
                               const std::vector<const scanners::ExternalScanner*>& external_scanners);

// What a finished job reports to an observer (metrics).
struct JobOutcome {
  std::int64_t job_id = 0;
  store::JobState state = store::JobState::done;  // done, failed, or queued (a retry)
  std::string error_code;                         // "" unless failed or retried
  std::chrono::milliseconds duration{0};          // this attempt
  std::uint64_t bytes_hashed = 0;
  std::vector<std::string> verdicts;              // one per image scanned
};

struct WorkerOptions {
  unsigned workers = 2;               // threads taking jobs
  unsigned scan_threads = 1;          // hashing threads per scan (ScanOptions::threads)
  scan::ScanOptions scan;             // thresholds, cache; threads/progress are set per job
  image::SourceOptions source;        // credentials, platforms, limits for registry references
  std::chrono::milliseconds receive_wait{std::chrono::milliseconds(500)};
  std::chrono::milliseconds retry_initial{std::chrono::seconds(2)};  // doubled per attempt
  std::chrono::milliseconds retry_max{std::chrono::minutes(5)};
  std::chrono::milliseconds orphan_grace{std::chrono::seconds(30)};  // for start()'s requeue_orphans
  // Waiting out a job-store outage (see above): doubled per failed call.
  std::chrono::milliseconds store_retry_initial{std::chrono::milliseconds(100)};
  std::chrono::milliseconds store_retry_max{std::chrono::seconds(5)};
  const Clock* clock = nullptr;       // null: system_clock()
  std::string tool_version;           // the report's "tool" version
  std::function<void(const JobOutcome&)> on_outcome;  // called on worker threads
  // Called after each committed state change of a job (worker threads).
  std::function<void(std::int64_t job_id, store::JobState state)> on_state;
  // Called (worker threads) when a job-store call failed as unavailable and
  // is repeated after `delay`; also for a start-up orphan sweep put off.
  std::function<void(const Error& error, std::chrono::milliseconds delay)> on_store_wait;
  // Called (worker threads) when receiving from the queue fails, once per
  // distinct error in a row (the loop retries every 200 ms), and with nullptr
  // when receiving works again: a broker that went away is then visible in
  // the log instead of as silent idleness.
  std::function<void(const Error* error)> on_queue_error;
};

// The queue message of a job: key "job:<id>", body {"job_id": <id>}.
queue::Message job_message(std::int64_t job_id);
Result<std::int64_t> parse_job_message(const std::string& body);

// Enqueue results for the API (202 body).
struct Enqueued {
  store::JobRecord job;
  bool created = false;   // a new job
  bool requeued = false;  // a finished job queued again (force)
};

// create_or_get_job, then, when this call created or re-queued the job,
// publish + mark_published. On return the job is durable, and durably queued
// unless the publish failed, in which case the error is returned and the row
// stays for requeue_orphans. A caller that finds an existing job publishes
// nothing: only one message per run, however many webhooks race.
Result<Enqueued> enqueue_scan(store::JobStore& jobs, queue::JobQueue& queue, const store::JobRequest& request);

// Publishes queued jobs whose publish was never confirmed and that were
// created at least `grace` ago (younger ones may be being published by their
// creator). Returns how many.
Result<std::size_t> requeue_orphans(store::JobStore& jobs, queue::JobQueue& queue,
                                    std::chrono::milliseconds grace = std::chrono::seconds(30),
                                    const Clock* clock = nullptr);
// Publishes again unfinished jobs untouched for `older_than` (a lost message).
Result<std::size_t> requeue_stale(store::JobStore& jobs, queue::JobQueue& queue, std::chrono::milliseconds older_than,
                                  const Clock* clock = nullptr);

// Re-queues (source rescan, forced) every image whose result was matched with
// other reference sets than `fingerprint`. The worker re-matches the cached
// layer facts of the stored resolved image: no manifest or layer is
// downloaded unless a layer's facts are missing or lack similarity digests a
// now-unknown file needs (ADR 0007), in which case only that layer is read
// from the image's reference. Returns the number of jobs queued.
Result<std::size_t> rescan_changed(store::JobStore& jobs, queue::JobQueue& queue, const std::string& fingerprint);

struct StopReport {
  std::size_t finished = 0;  // jobs that completed during the drain
  std::size_t released = 0;  // jobs cut short at the deadline: message released, job back to queued
};

class WorkerPool {
 public:
  WorkerPool(WorkerEnvironment env, WorkerOptions options);
  ~WorkerPool();  // stop(0) if running
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // Starts options.workers threads. invalid_argument when the environment
  // lacks a required pointer or the pool already runs. The start-up sweep
  // (requeue_orphans) failing as unavailable does not stop the start: the
  // threads repeat it with backoff once the store is back.
  Status start();
  // Stops taking jobs, waits up to `deadline` for the jobs in flight, then
  // cancels the rest (between files) and releases their messages with the
  // job back in queued; joins every thread. Idempotent.
  StopReport stop(std::chrono::milliseconds deadline);

  // Processes at most one delivery on the calling thread (tests, one-shot
  // CLI). Returns true when a delivery was handled.
  Result<bool> process_one(std::chrono::milliseconds wait);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace hashsieve::worker
