// The group committer (ADR 0017) over the real embedded store and queue; a
// gate in front of the queue's publish_batch holds a batch in flight so the
// tests can line up the next one deterministically, and can fail it.
#include "hashsieve/service/group_committer.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <atomic>
#include <filesystem>
#include <map>
#include <set>
#include <thread>

#include "hashsieve/worker/enqueue.h"

namespace hashsieve::service {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "hashsieve-group-commit-XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data());
  }
  ~TempDir() { fs::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Forwards to a real queue; publish_batch waits while the gate is closed and
// fails (touching nothing) while `fail` is set.
class GatedQueue final : public queue::JobQueue {
 public:
  explicit GatedQueue(std::unique_ptr<queue::JobQueue> inner) : inner_(std::move(inner)) {}

  void close_gate() {
    std::lock_guard lock(mutex_);
    open_ = false;
  }
  void open_gate() {
    {
      std::lock_guard lock(mutex_);
      open_ = true;
    }
    cv_.notify_all();
  }
  // Blocks until a publish_batch is waiting at the closed gate.
  void wait_for_blocked() {
    std::unique_lock lock(mutex_);
    cv_.wait(lock, [&] { return blocked_ > 0; });
  }
  std::atomic<bool> fail{false};
  std::vector<std::size_t> batch_sizes() {
    std::lock_guard lock(mutex_);
    return sizes_;
  }

  Status publish(const queue::Message& m) override { return inner_->publish(m); }
  Status publish_batch(const std::vector<queue::Message>& messages) override {
    {
      std::unique_lock lock(mutex_);
      ++blocked_;
      cv_.notify_all();
      cv_.wait(lock, [&] { return open_; });
      --blocked_;
      sizes_.push_back(messages.size());
    }
    if (fail.load()) return Error(ErrorCode::unavailable, "injected broker outage");
    return inner_->publish_batch(messages);
  }
  Result<std::optional<queue::Delivery>> receive(milliseconds wait) override { return inner_->receive(wait); }
  Status ack(const queue::Delivery& d) override { return inner_->ack(d); }
  Result<bool> retry(const queue::Delivery& d, milliseconds delay, const std::string& reason) override {
    return inner_->retry(d, delay, reason);
  }
  Status dead_letter(const queue::Delivery& d, const std::string& reason) override {
    return inner_->dead_letter(d, reason);
  }
  Status release(const queue::Delivery& d) override { return inner_->release(d); }
  Status extend_lease(const queue::Delivery& d) override { return inner_->extend_lease(d); }
  Result<queue::QueueStats> stats() override { return inner_->stats(); }
  Result<std::vector<queue::DeadLetter>> list_dead(std::size_t limit) override { return inner_->list_dead(limit); }

 private:
  std::unique_ptr<queue::JobQueue> inner_;
  std::mutex mutex_;
  std::condition_variable cv_;
  bool open_ = true;
  int blocked_ = 0;
  std::vector<std::size_t> sizes_;
};

std::string digest(int i) {
  char hex[65];
  std::snprintf(hex, sizeof hex, "%064x", i + 1);
  return std::string("sha256:") + hex;
}

store::JobRequest request(const std::string& repo, int i) {
  store::JobRequest r;
  r.repository = repo;
  r.manifest_digest = digest(i);
  r.reference = "registry.test/" + repo + "@" + r.manifest_digest;
  r.source = store::JobSource::webhook;
  return r;
}

class GroupCommitterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto jobs = store::open_sqlite_job_store(dir_.path(), nullptr, /*fsync=*/false);
    ASSERT_TRUE(jobs.ok()) << jobs.error().message();
    jobs_ = std::move(*jobs);
    queue::QueueOptions o;
    o.durability = queue::Durability::process_crash;
    auto q = queue::open_sqlite_queue(dir_.path(), o);
    ASSERT_TRUE(q.ok()) << q.error().message();
    queue_ = std::make_unique<GatedQueue>(std::move(*q));
  }

  std::uint64_t ready() {
    auto st = queue_->stats();
    EXPECT_TRUE(st.ok());
    return st.ok() ? st->ready : 0;
  }

  // Starts `n` submitters in threads; returns once all of them wait in the
  // committer (behind the batch held at the gate).
  void submit_behind_gate(GroupCommitter& c, std::vector<std::vector<store::JobRequest>> subs,
                          std::vector<std::optional<Result<std::vector<worker::Enqueued>>>>& results,
                          std::vector<std::thread>& threads) {
    results.resize(subs.size());
    for (std::size_t i = 0; i < subs.size(); ++i) {
      threads.emplace_back([&c, &results, i, s = subs[i]] { results[i].emplace(c.submit(s)); });
    }
    while (c.pending() < subs.size()) std::this_thread::sleep_for(milliseconds(1));
  }

  TempDir dir_;
  std::unique_ptr<store::JobStore> jobs_;
  std::unique_ptr<GatedQueue> queue_;
};

TEST_F(GroupCommitterTest, ManyConcurrentProducersAreAllDurableWithTheirOwnJobs) {
  std::atomic<std::size_t> batches{0};
  GroupCommitOptions options;
  options.on_batch = [&](std::size_t, std::chrono::nanoseconds, bool ok) {
    EXPECT_TRUE(ok);
    batches.fetch_add(1);
  };
  GroupCommitter committer(*jobs_, *queue_, options);
  constexpr int kThreads = 16;
  constexpr int kPerThread = 40;
  // Submission k of thread t asks for digests 2·(t·kPerThread + k) and, every
  // third time, that + 1 in the same submission (an envelope of two pushes).
  std::vector<std::vector<std::pair<std::string, std::int64_t>>> got(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int k = 0; k < kPerThread; ++k) {
        const int base = 2 * (t * kPerThread + k);
        std::vector<store::JobRequest> sub = {request("team/app" + std::to_string(t % 3), base)};
        if (k % 3 == 0) sub.push_back(request("team/app" + std::to_string(t % 3), base + 1));
        auto r = committer.submit(sub);
        ASSERT_TRUE(r.ok()) << r.error().message();
        ASSERT_EQ(r->size(), sub.size());
        for (std::size_t i = 0; i < sub.size(); ++i) {
          const auto& e = (*r)[i];
          // Each caller gets the job of its own request, committed and published.
          EXPECT_EQ(e.job.manifest_digest, sub[i].manifest_digest);
          EXPECT_EQ(e.job.repository, sub[i].repository);
          EXPECT_TRUE(e.created);
          EXPECT_TRUE(e.job.published);
          got[static_cast<std::size_t>(t)].emplace_back(sub[i].manifest_digest, e.job.id);
        }
      }
    });
  }
  for (auto& t : threads) t.join();

  std::set<std::int64_t> ids;
  std::size_t requests = 0;
  for (const auto& g : got) {
    for (const auto& [d, id] : g) {
      ++requests;
      EXPECT_TRUE(ids.insert(id).second) << "job " << id << " handed to two requests";
      auto job = jobs_->get_job(id);
      ASSERT_TRUE(job.ok() && job->has_value());
      EXPECT_EQ((*job)->manifest_digest, d);
      EXPECT_TRUE((*job)->published);
    }
  }
  EXPECT_EQ(requests, static_cast<std::size_t>(kThreads * (kPerThread + (kPerThread + 2) / 3)));
  EXPECT_EQ(ready(), requests);  // one message per job, none lost, none doubled
  auto unpublished = jobs_->list_unpublished(10);
  ASSERT_TRUE(unpublished.ok());
  EXPECT_TRUE(unpublished->empty());
  EXPECT_LE(batches.load(), static_cast<std::size_t>(kThreads * kPerThread));
}

TEST_F(GroupCommitterTest, RequestsArrivingDuringACommitShareTheNextOneAndDedupe) {
  GroupCommitter committer(*jobs_, *queue_);
  queue_->close_gate();
  std::thread first([&] {
    auto r = committer.submit({request("team/a", 1)});
    ASSERT_TRUE(r.ok()) << r.error().message();
    EXPECT_TRUE(r->front().created);
  });
  queue_->wait_for_blocked();
  // While batch 1 is held: five senders of digest 2 (a duplicate delivery
  // storm), one of digest 1 again, one envelope with digests 3 and 4.
  std::vector<std::vector<store::JobRequest>> subs;
  for (int i = 0; i < 5; ++i) subs.push_back({request("team/a", 2)});
  subs.push_back({request("team/a", 1)});
  subs.push_back({request("team/a", 3), request("team/a", 4)});
  std::vector<std::optional<Result<std::vector<worker::Enqueued>>>> results;
  std::vector<std::thread> threads;
  submit_behind_gate(committer, subs, results, threads);
  queue_->open_gate();
  first.join();
  for (auto& t : threads) t.join();

  EXPECT_EQ(queue_->batch_sizes(), (std::vector<std::size_t>{1, 3}));  // two commits; digests 2, 3, 4 published once
  std::set<std::int64_t> ids_of_2;
  int created_2 = 0;
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(results[static_cast<std::size_t>(i)]->ok());
    const auto& e = (*results[static_cast<std::size_t>(i)])->front();
    ids_of_2.insert(e.job.id);
    created_2 += e.created ? 1 : 0;
  }
  EXPECT_EQ(ids_of_2.size(), 1u);
  EXPECT_EQ(created_2, 1);
  ASSERT_TRUE(results[5]->ok());
  EXPECT_FALSE((*results[5])->front().created);
  ASSERT_TRUE(results[6]->ok());
  ASSERT_EQ((*results[6])->size(), 2u);
  EXPECT_NE((*results[6])->at(0).job.id, (*results[6])->at(1).job.id);
  EXPECT_EQ(ready(), 4u);
}

TEST_F(GroupCommitterTest, AFailedBatchFailsEveryWaiterAndAcknowledgesNone) {
  std::vector<bool> outcomes;
  GroupCommitOptions options;
  options.on_batch = [&](std::size_t, std::chrono::nanoseconds, bool ok) { outcomes.push_back(ok); };
  GroupCommitter committer(*jobs_, *queue_, options);
  queue_->close_gate();
  std::thread first([&] { EXPECT_TRUE(committer.submit({request("team/a", 100)}).ok()); });
  queue_->wait_for_blocked();
  std::vector<std::vector<store::JobRequest>> subs;
  for (int i = 0; i < 6; ++i) subs.push_back({request("team/b", i)});
  std::vector<std::optional<Result<std::vector<worker::Enqueued>>>> results;
  std::vector<std::thread> threads;
  submit_behind_gate(committer, subs, results, threads);
  // Batch 1 goes through; then the broker "goes away" for batch 2.
  queue_->open_gate();
  first.join();
  queue_->close_gate();
  queue_->wait_for_blocked();
  queue_->fail = true;
  queue_->open_gate();
  for (auto& t : threads) t.join();

  for (const auto& r : results) {
    ASSERT_TRUE(r.has_value());
    ASSERT_FALSE(r->ok()) << "a waiter of the failed batch was told it succeeded";
    EXPECT_EQ(r->error().code(), ErrorCode::unavailable);
    const std::string m = r->error().message();
    EXPECT_NE(m.find("injected broker outage"), std::string::npos) << m;
    EXPECT_NE(m.find("group commit of 6 scan requests"), std::string::npos) << m;
  }
  EXPECT_EQ(outcomes, (std::vector<bool>{true, false}));
  // The rows committed but none counts as published: only batch 1's message
  // is in the queue, and the six wait for the orphan sweep.
  EXPECT_EQ(ready(), 1u);
  auto unpublished = jobs_->list_unpublished(100);
  ASSERT_TRUE(unpublished.ok());
  EXPECT_EQ(unpublished->size(), 6u);

  // The registry delivers again: deduplicated, nothing doubled; the sweep
  // then publishes each job exactly once.
  queue_->fail = false;
  for (int i = 0; i < 6; ++i) {
    auto again = committer.submit({request("team/b", i)});
    ASSERT_TRUE(again.ok()) << again.error().message();
    EXPECT_FALSE(again->front().created);
  }
  auto swept = worker::requeue_orphans(*jobs_, *queue_, milliseconds(0));
  ASSERT_TRUE(swept.ok());
  EXPECT_EQ(*swept, 6u);
  EXPECT_EQ(ready(), 7u);
}

TEST_F(GroupCommitterTest, AnInvalidRequestFailsOnlyItsOwnSubmission) {
  GroupCommitter committer(*jobs_, *queue_);
  store::JobRequest bad;
  bad.repository = "team/a";  // neither reference nor digest
  auto r = committer.submit({request("team/a", 1), bad});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::invalid_argument);
  EXPECT_EQ(ready(), 0u);  // the valid half of that submission was not enqueued either
  auto ok = committer.submit({request("team/a", 2)});
  ASSERT_TRUE(ok.ok()) << ok.error().message();
  EXPECT_EQ(ready(), 1u);
}

TEST_F(GroupCommitterTest, StopCommitsWhatWasAcceptedThenRejects) {
  GroupCommitter committer(*jobs_, *queue_);
  queue_->close_gate();
  std::thread first([&] { EXPECT_TRUE(committer.submit({request("team/a", 0)}).ok()); });
  queue_->wait_for_blocked();
  std::vector<std::vector<store::JobRequest>> subs;
  for (int i = 1; i <= 8; ++i) subs.push_back({request("team/a", i)});
  std::vector<std::optional<Result<std::vector<worker::Enqueued>>>> results;
  std::vector<std::thread> threads;
  submit_behind_gate(committer, subs, results, threads);
  std::thread stopper([&] { committer.stop(); });
  // stop() must not return before the accepted submissions are committed.
  std::this_thread::sleep_for(milliseconds(20));
  queue_->open_gate();
  stopper.join();
  first.join();
  for (auto& t : threads) t.join();
  for (const auto& r : results) {
    ASSERT_TRUE(r.has_value() && r->ok());
    EXPECT_TRUE((*r)->front().job.published);
  }
  EXPECT_EQ(ready(), 9u);
  auto late = committer.submit({request("team/a", 99)});
  ASSERT_FALSE(late.ok());
  EXPECT_EQ(late.error().code(), ErrorCode::unavailable);
  EXPECT_EQ(ready(), 9u);
}

TEST_F(GroupCommitterTest, MaxBatchSplitsALargeBacklog) {
  GroupCommitOptions options;
  options.max_batch = 3;
  GroupCommitter committer(*jobs_, *queue_, options);
  queue_->close_gate();
  std::thread first([&] { EXPECT_TRUE(committer.submit({request("team/a", 0)}).ok()); });
  queue_->wait_for_blocked();
  std::vector<std::vector<store::JobRequest>> subs;
  for (int i = 1; i <= 7; ++i) subs.push_back({request("team/a", i)});
  std::vector<std::optional<Result<std::vector<worker::Enqueued>>>> results;
  std::vector<std::thread> threads;
  submit_behind_gate(committer, subs, results, threads);
  queue_->open_gate();
  first.join();
  for (auto& t : threads) t.join();
  EXPECT_EQ(queue_->batch_sizes(), (std::vector<std::size_t>{1, 3, 3, 1}));
  EXPECT_EQ(ready(), 8u);
}

// The linger only waits for senders that were active: one sender sending
// request after request is never held back by it.
TEST_F(GroupCommitterTest, ALoneSenderIsNotDelayedByTheLinger) {
  GroupCommitOptions options;
  options.linger = std::chrono::seconds(2);
  GroupCommitter committer(*jobs_, *queue_, options);
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(committer.submit({request("team/a", i)}).ok());
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(2));
  EXPECT_EQ(ready(), 10u);
}

// Closed-loop senders: a sender answered by a batch sends again at once. The
// next batch waits (up to the linger) for it instead of starting with only
// those that were already waiting, so the two do not alternate batches.
TEST_F(GroupCommitterTest, TheLingerWaitsForTheSenderThatWasJustAnswered) {
  GroupCommitOptions options;
  options.linger = std::chrono::seconds(5);
  GroupCommitter committer(*jobs_, *queue_, options);
  queue_->close_gate();
  std::thread lone([&] { EXPECT_TRUE(committer.submit({request("team/a", 100)}).ok()); });
  queue_->wait_for_blocked();
  std::vector<std::vector<store::JobRequest>> cohort;
  for (int i = 0; i < 4; ++i) cohort.push_back({request("team/a", i)});
  std::vector<std::optional<Result<std::vector<worker::Enqueued>>>> results;
  std::vector<std::thread> threads;
  submit_behind_gate(committer, cohort, results, threads);
  const auto t0 = std::chrono::steady_clock::now();
  queue_->open_gate();
  lone.join();  // answered: 5 senders were active, 4 are waiting
  auto again = committer.submit({request("team/a", 101)});  // the lone sender's next request
  ASSERT_TRUE(again.ok()) << again.error().message();
  for (auto& t : threads) t.join();
  EXPECT_EQ(queue_->batch_sizes(), (std::vector<std::size_t>{1, 5}));
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));  // it did not wait the full linger
  EXPECT_EQ(ready(), 6u);
}

// The sweep of `serve` (worker::sweep_queue): orphans always, the stale pass
// only on an idle queue, so a backlog is not published twice.
TEST_F(GroupCommitterTest, SweepPublishesOrphansAndStaleJobsOnlyWhenTheQueueIsIdle) {
  ManualClock clock;
  auto jobs = store::open_sqlite_job_store(dir_.path(), &clock, false);
  ASSERT_TRUE(jobs.ok());
  // Two rows whose publish never happened (a crash after the commit).
  ASSERT_TRUE((*jobs)->create_or_get_jobs({request("team/s", 1), request("team/s", 2)}).ok());
  worker::SweepOptions o;
  o.orphan_grace = milliseconds(30'000);
  o.stale_after = milliseconds(3'600'000);
  o.clock = &clock;
  struct Case {
    std::string name;
    std::int64_t advance_ms;
    bool drain_queue;  // a worker took every message (and lost them)
    std::size_t want_orphans, want_stale;
    bool want_skipped;
  };
  const Case cases[] = {
      {"too young to be orphans", 1'000, false, 0, 0, false},
      {"orphans after the grace", 30'000, false, 2, 0, true},
      {"backlog waiting: no stale pass", 3'600'000, false, 0, 0, true},
      {"idle queue, jobs untouched: stale", 1'000, true, 0, 2, false},
      {"just re-published: queue busy again", 3'600'000, false, 0, 0, true},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    clock.advance_ms(c.advance_ms);
    if (c.drain_queue) {
      for (;;) {
        auto d = queue_->receive(milliseconds(0));
        ASSERT_TRUE(d.ok());
        if (!d->has_value()) break;
        ASSERT_TRUE(queue_->ack(**d).ok());  // lost: acked, never processed
      }
    }
    auto r = worker::sweep_queue(**jobs, *queue_, o);
    ASSERT_TRUE(r.ok()) << r.error().message();
    EXPECT_EQ(r->orphans, c.want_orphans);
    EXPECT_EQ(r->stale, c.want_stale);
    EXPECT_EQ(r->stale_skipped, c.want_skipped);
  }
}

}  // namespace
}  // namespace hashsieve::service
