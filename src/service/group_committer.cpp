#include "hashsieve/service/group_committer.h"

#include "hashsieve/worker/enqueue.h"

namespace hashsieve::service {

GroupCommitter::GroupCommitter(store::JobStore& jobs, queue::JobQueue& queue, GroupCommitOptions options)
    : jobs_(jobs), queue_(queue), options_(std::move(options)) {
  if (options_.max_batch == 0) options_.max_batch = 1;
  thread_ = std::thread([this] { run(); });
}

GroupCommitter::~GroupCommitter() { stop(); }

Result<std::vector<worker::Enqueued>> GroupCommitter::submit(std::vector<store::JobRequest> requests) {
  if (requests.empty()) return std::vector<worker::Enqueued>{};
  // Checked here so that one bad request cannot fail the batch it would join.
  for (const auto& r : requests) {
    if (r.reference.empty() && r.manifest_digest.empty()) {
      return Error(ErrorCode::invalid_argument, "scan request: a job needs a reference or a manifest digest");
    }
  }
  Waiter waiter{std::move(requests), std::nullopt};
  std::unique_lock lock(mutex_);
  if (stopping_) return Error(ErrorCode::unavailable, "the service is shutting down: not enqueued");
  waiting_.push_back(&waiter);
  work_.notify_one();
  done_.wait(lock, [&] { return waiter.result.has_value(); });
  return std::move(*waiter.result);
}

void GroupCommitter::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  work_.notify_one();
  if (thread_.joinable()) thread_.join();
}

std::size_t GroupCommitter::pending() const {
  std::lock_guard lock(mutex_);
  return waiting_.size();
}

void GroupCommitter::run() {
  std::unique_lock lock(mutex_);
  for (;;) {
    work_.wait(lock, [&] { return !waiting_.empty() || stopping_; });
    // Accepted submissions are committed even when stopping: their senders
    // are waiting for an answer, and stop() comes after the HTTP server has
    // finished its handlers anyway.
    if (waiting_.empty()) return;
    if (options_.linger.count() > 0 && waiting_.size() < active_) {
      work_.wait_for(lock, options_.linger, [&] { return stopping_ || waiting_.size() >= active_; });
    }
    std::vector<Waiter*> batch;
    std::vector<store::JobRequest> requests;
    while (!waiting_.empty() && (batch.empty() || requests.size() + waiting_.front()->requests.size() <= options_.max_batch)) {
      Waiter* w = waiting_.front();
      waiting_.pop_front();
      requests.insert(requests.end(), w->requests.begin(), w->requests.end());
      batch.push_back(w);
    }
    lock.unlock();
    const auto t0 = std::chrono::steady_clock::now();
    auto committed = worker::enqueue_scans(jobs_, queue_, requests);
    if (!committed.ok()) {
      committed = std::move(committed).error().with_context("group commit of " + std::to_string(requests.size()) +
                                                            " scan requests from " + std::to_string(batch.size()) +
                                                            " senders");
    }
    if (options_.on_batch) {
      options_.on_batch(requests.size(), std::chrono::steady_clock::now() - t0, committed.ok());
    }
    lock.lock();
    std::size_t at = 0;
    for (Waiter* w : batch) {
      if (committed.ok()) {
        const auto first = committed->begin() + static_cast<std::ptrdiff_t>(at);
        w->result.emplace(std::vector<worker::Enqueued>(first, first + static_cast<std::ptrdiff_t>(w->requests.size())));
        at += w->requests.size();
      } else {
        w->result.emplace(committed.error());
      }
    }
    active_ = batch.size() + waiting_.size();
    done_.notify_all();
  }
}

}  // namespace hashsieve::service
