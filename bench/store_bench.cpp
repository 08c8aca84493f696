// Database write rates of the store backends: layer-fact rows per second
// (put_layer_facts of a 1000-entry layer, one transaction each) and job
// state transitions per second (create_or_get_job, begin_attempt, then
// hashing, matching, done: four transitions per job, each one transaction).
//
// SQLite runs in a temporary directory (the defaults `serve` uses: WAL,
// synchronous=NORMAL for the layer cache, FULL for jobs). PostgreSQL runs
// when HASHSIEVE_PG_CONNINFO names a database (a postgresql:// URI); the
// bench writes keys of its own there, so any scratch database will do.
//
//   export HASHSIEVE_PG_CONNINFO='postgresql:///bench?host=/tmp/pg&port=5432'
//   build/release/bench/store_bench --benchmark_repetitions=5
//       --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>
#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

#include "hashsieve/core/result.h"
#include "hashsieve/store/job_store.h"
#include "hashsieve/store/open_store.h"
#include "hashsieve/store/store.h"

namespace {

using namespace hashsieve::store;

constexpr int kLayerFiles = 1000;

// A realistic row: hex digests of the usual lengths, a short path.
LayerFacts make_layer() {
  LayerFacts facts;
  for (int i = 0; i < kLayerFiles; ++i) {
    FileFacts f;
    f.path = "usr/lib/x86_64-linux-gnu/pkg" + std::to_string(i / 50) + "/file" + std::to_string(i) + ".so";
    f.size = 4096 + static_cast<std::uint64_t>(i);
    f.mode = 0644;
    f.md5 = std::string(32, 'a');
    f.sha1 = std::string(40, 'b');
    f.sha256 = std::string(64, 'c');
    f.crc32 = "DEADBEEF";
    f.tlsh = "T1" + std::string(70, 'D');
    f.ssdeep = "96:" + std::string(40, 'x') + ":" + std::string(20, 'y');
    f.content_keys = std::string(64, '0');
    f.similarity_computed = true;
    facts.files.push_back(std::move(f));
  }
  return facts;
}

// Unique per process run, so repeated runs against one PostgreSQL database
// never hit existing keys.
std::string run_prefix() {
  static const std::string p = std::to_string(::getpid()) + "-" + std::to_string(std::rand());
  return p;
}

// Keys never repeat within a run either (repetitions reuse the store).
std::string next_key() {
  static std::atomic<std::int64_t> n{0};
  return "sha256:" + run_prefix() + "-" + std::to_string(n++);
}

StoreSet open_or_die(const std::string& location) {
  auto s = open_store(location);
  if (!s.ok()) {
    std::fprintf(stderr, "store_bench: %s\n", s.error().message().c_str());
    std::exit(1);
  }
  return std::move(s).value();
}

class SqliteDir {
 public:
  SqliteDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "hashsieve-store-bench-XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data());
  }
  ~SqliteDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

void layer_puts(benchmark::State& state, const std::string& location) {
  StoreSet s = open_or_die(location);
  const LayerFacts facts = make_layer();
  std::int64_t n = 0;
  for (auto _ : state) {
    const LayerKey key{next_key(), "bench/1"};
    ++n;
    auto st = s.store->put_layer_facts(key, facts);
    if (!st.ok()) {
      state.SkipWithError(st.error().message().c_str());
      break;
    }
  }
  state.counters["rows/s"] = benchmark::Counter(static_cast<double>(n * kLayerFiles), benchmark::Counter::kIsRate);
}

void job_transitions(benchmark::State& state, const std::string& location) {
  StoreSet s = open_or_die(location);
  std::int64_t n = 0;
  for (auto _ : state) {
    JobRequest r{"bench/app", "localhost:5000/bench/app", next_key(), JobSource::webhook, false};
    ++n;
    auto job = s.jobs->create_or_get_job(r);
    hashsieve::Status st = job.ok() ? hashsieve::Status{} : hashsieve::Status(job.error());
    if (st.ok()) {
      auto started = s.jobs->begin_attempt(job->job.id);
      if (!started.ok()) st = started.error();
    }
    for (JobState to : {JobState::hashing, JobState::matching, JobState::done}) {
      if (!st.ok()) break;
      auto moved = s.jobs->transition(job->job.id, to);
      if (!moved.ok()) st = moved.error();
    }
    if (!st.ok()) {
      state.SkipWithError(st.error().message().c_str());
      break;
    }
  }
  state.counters["transitions/s"] = benchmark::Counter(static_cast<double>(n * 4), benchmark::Counter::kIsRate);
  state.counters["jobs/s"] = benchmark::Counter(static_cast<double>(n), benchmark::Counter::kIsRate);
}

}  // namespace

int main(int argc, char** argv) {
  SqliteDir dir;
  benchmark::RegisterBenchmark("layer_put/sqlite", layer_puts, dir.path())->Unit(benchmark::kMillisecond)->UseRealTime();
  benchmark::RegisterBenchmark("job_lifecycle/sqlite", job_transitions, dir.path())->Unit(benchmark::kMillisecond)->UseRealTime();
  if (const char* pg = std::getenv("HASHSIEVE_PG_CONNINFO"); pg != nullptr && *pg != '\0') {
    std::string url = pg;
    benchmark::RegisterBenchmark("layer_put/postgres", layer_puts, url)->Unit(benchmark::kMillisecond)->UseRealTime();
    benchmark::RegisterBenchmark("job_lifecycle/postgres", job_transitions, url)->Unit(benchmark::kMillisecond)->UseRealTime();
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
