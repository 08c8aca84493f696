// Enqueue latency of the webhook path: JobStore::create_or_get_job + JobQueue::publish
// + mark_published (worker::enqueue_scan), 10,000 distinct jobs into a fresh
// data directory, per-call latency percentiles as counters (microseconds).
// Arguments: durability (0 = fsync on every commit, 1 = process-crash safe
// only) and the number of consumer threads receiving and acking meanwhile
// ("under load": they contend for queue.db's write lock).
#include <benchmark/benchmark.h>
#include <stdlib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <thread>
#include <vector>

#include "hashsieve/worker/worker_pool.h"

namespace {

namespace fs = std::filesystem;
using namespace hashsieve;

constexpr int kJobs = 10'000;

void BM_Enqueue(benchmark::State& state) {
  const bool fsync = state.range(0) == 0;
  const int consumers = static_cast<int>(state.range(1));
  for (auto _ : state) {
    state.PauseTiming();
    std::string tmpl = (fs::temp_directory_path() / "hashsieve-queue-bench-XXXXXX").string();
    const std::string dir = ::mkdtemp(tmpl.data());
    auto jobs = store::open_sqlite_job_store(dir, nullptr, fsync);
    queue::QueueOptions qo;
    qo.durability = fsync ? queue::Durability::fsync : queue::Durability::process_crash;
    qo.poll_interval = std::chrono::milliseconds(1);
    auto q = queue::open_sqlite_queue(dir, qo);
    if (!jobs.ok() || !q.ok()) {
      state.SkipWithError("cannot open the job store or the queue");
      return;
    }
    std::atomic<bool> stop{false};
    std::vector<std::thread> threads;
    for (int c = 0; c < consumers; ++c) {
      threads.emplace_back([&] {
        // Each consumer has its own connection, as a worker process would.
        auto own = queue::open_sqlite_queue(dir, qo);
        if (!own.ok()) return;
        while (!stop.load()) {
          auto d = (*own)->receive(std::chrono::milliseconds(5));
          if (d.ok() && d->has_value()) (void)(*own)->ack(**d);
        }
      });
    }
    std::vector<double> us;
    us.reserve(kJobs);
    state.ResumeTiming();
    for (int i = 0; i < kJobs; ++i) {
      char digest[80];
      std::snprintf(digest, sizeof digest, "sha256:%064x", i);
      const store::JobRequest req{"team/app", std::string("registry.local/team/app@") + digest, digest,
                                  store::JobSource::webhook, false};
      const auto t0 = std::chrono::steady_clock::now();
      auto r = worker::enqueue_scan(**jobs, **q, req);
      const auto t1 = std::chrono::steady_clock::now();
      if (!r.ok()) {
        state.SkipWithError(r.error().message().c_str());
        break;
      }
      us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
    }
    state.PauseTiming();
    stop = true;
    for (auto& t : threads) t.join();
    std::sort(us.begin(), us.end());
    auto pct = [&](double p) { return us.empty() ? 0.0 : us[static_cast<std::size_t>(p * (us.size() - 1))]; };
    state.counters["p50_us"] = pct(0.50);
    state.counters["p99_us"] = pct(0.99);
    state.counters["max_us"] = us.empty() ? 0.0 : us.back();
    state.counters["jobs"] = static_cast<double>(us.size());
    fs::remove_all(dir);
    state.ResumeTiming();
  }
}
BENCHMARK(BM_Enqueue)
    ->ArgNames({"nosync", "consumers"})
    ->Args({0, 0})
    ->Args({1, 0})
    ->Args({0, 2})
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
