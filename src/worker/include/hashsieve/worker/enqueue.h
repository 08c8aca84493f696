// Batched enqueueing: the group commit of concurrent webhook requests
// (ADR 0017). The single-request path, enqueue_scan, and the sweeps are in
// worker_pool.h.
#pragma once

#include <chrono>
#include <cstddef>
#include <vector>

#include "hashsieve/core/clock.h"

#include "hashsieve/core/result.h"
#include "hashsieve/queue/job_queue.h"
#include "hashsieve/store/job_store.h"
#include "hashsieve/worker/worker_pool.h"

namespace hashsieve::worker {

// enqueue_scan for every request at the cost of one: one create_or_get_jobs
// transaction, one publish_batch, one mark_published_all. Results are in
// request order. Requests for the same job (repository + manifest digest)
// share it and publish one message. On error nothing is reported as
// enqueued: when the rows committed but the publish failed, they stay
// unpublished for requeue_orphans, exactly as with enqueue_scan.
Result<std::vector<Enqueued>> enqueue_scans(store::JobStore& jobs, queue::JobQueue& queue,
                                            const std::vector<store::JobRequest>& requests);

struct SweepOptions {
  std::chrono::milliseconds orphan_grace{std::chrono::seconds(30)};
  std::chrono::milliseconds stale_after{std::chrono::hours(1)};
  const Clock* clock = nullptr;  // null: system_clock()
};

struct SweepReport {
  std::size_t orphans = 0;     // unpublished jobs published (requeue_orphans)
  std::size_t stale = 0;       // unfinished jobs published again (requeue_stale)
  bool stale_skipped = false;  // the queue was not idle, so the stale pass did not run
};

// One round of the periodic sweep of `serve` (and `worker`): requeue_orphans
// always; requeue_stale only when the queue holds nothing ready, in flight
// or delayed. A job untouched for `stale_after` while messages are still
// waiting is most likely just behind a backlog, and publishing the whole
// backlog again on every round would double it; when the queue is idle, an
// unfinished job has lost its message for sure.
Result<SweepReport> sweep_queue(store::JobStore& jobs, queue::JobQueue& queue, const SweepOptions& options);

}  // namespace hashsieve::worker
