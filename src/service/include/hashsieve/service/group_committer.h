// Group commit of scan requests (ADR 0017). Every webhook request must be
// durable before its 202; with one SQLite fsync per request, concurrent
// requests queue behind each other's fsyncs. Instead each request hands its
// jobs to the one committer thread and waits; the committer takes every
// request pending at that moment, enqueues them all with one transaction per
// database (worker::enqueue_scans: create_or_get_jobs, publish_batch,
// mark_published_all) and wakes the waiters. A request is thus still
// answered only after its jobs are committed and published, and the batch
// grows with the load, so an fsync is shared by all requests that arrived
// during the previous one.
//
// Failure is all or nothing per batch: when the batch's commit or publish
// fails, every waiter of that batch gets the error (with the batch size in
// its context) and none is told it succeeded. Rows committed without their
// publish stay unpublished for the orphan sweep; a retried request finds
// them (deduplicated), so nothing is lost or doubled.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "hashsieve/core/result.h"
#include "hashsieve/queue/job_queue.h"
#include "hashsieve/store/job_store.h"
#include "hashsieve/worker/worker_pool.h"

namespace hashsieve::service {

struct GroupCommitOptions {
  // Requests per transaction; a submission is never split, so a batch may
  // exceed this by one submission's requests.
  std::size_t max_batch = 512;
  // Closed-loop senders (each sends again as soon as it is answered) split
  // into two cohorts that alternate batches, each waiting for the other's
  // commit before its own. So when fewer submissions are waiting than were
  // active at the end of the last batch (its senders + those then waiting),
  // the committer waits up to `linger` for the rest to come back. A lone
  // sender is never delayed (one active, one waiting). 0: never wait.
  std::chrono::microseconds linger{1000};
  // Called on the committer thread after each batch (metrics).
  std::function<void(std::size_t requests, std::chrono::nanoseconds duration, bool ok)> on_batch;
};

class GroupCommitter {
 public:
  // Starts the committer thread. jobs and queue must outlive the object.
  GroupCommitter(store::JobStore& jobs, queue::JobQueue& queue, GroupCommitOptions options = {});
  ~GroupCommitter();  // stop()
  GroupCommitter(const GroupCommitter&) = delete;
  GroupCommitter& operator=(const GroupCommitter&) = delete;

  // Blocks until the requests are committed and published (results in
  // request order, as worker::enqueue_scan would return them) or their batch
  // failed. An invalid request (neither reference nor digest) fails only its
  // own submission, before it joins a batch. After stop(): unavailable.
  Result<std::vector<worker::Enqueued>> submit(std::vector<store::JobRequest> requests);

  // Commits every submission already accepted, then ends the thread; later
  // submissions fail with unavailable. Idempotent.
  void stop();

  // Submissions waiting for the next batch (tests, metrics).
  std::size_t pending() const;

 private:
  struct Waiter {
    std::vector<store::JobRequest> requests;
    std::optional<Result<std::vector<worker::Enqueued>>> result;
  };

  void run();

  store::JobStore& jobs_;
  queue::JobQueue& queue_;
  GroupCommitOptions options_;
  mutable std::mutex mutex_;
  std::condition_variable work_;  // a submission arrived, or stop
  std::condition_variable done_;  // a batch finished
  std::deque<Waiter*> waiting_;
  bool stopping_ = false;
  std::size_t active_ = 0;  // senders answered by the last batch + submissions waiting then
  std::thread thread_;
};

}  // namespace hashsieve::service
