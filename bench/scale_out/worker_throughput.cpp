// Scan throughput of `hashsieve worker` processes, 1 against 2, side by side
// (docs/performance.md, "Scale-out: workers"). Per round and backend it runs
// both worker counts on the same job set, interleaved, so machine load hits
// both alike: a fresh queue and store, JOBS enqueued up front (the front
// end's enqueue_scan), then W worker processes (workers.count: 1 each) until
// every job is done. Prints per run: wall time, jobs/s, the workers' CPU
// seconds (wait4 rusage), and for PostgreSQL the workers' transactions
// (commits, reads included; this program's polls subtracted) and rows
// written (inserted + updated + deleted; pg_stat_database) per second; then the medians per backend and worker
// count. Starts its own rabbitmq-server and PostgreSQL cluster (the test
// fixtures); a backend whose server is missing is skipped with a reason.
//   worker_throughput [JOBS] [UNKNOWN_BYTES_PER_IMAGE] [ROUNDS] [HASHSIEVE_BINARY]
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "hashsieve/queue/open_queue.h"
#include "hashsieve/refset/builder.h"
#include "hashsieve/refset/catalog.h"
#include "hashsieve/store/open_store.h"
#include "hashsieve/worker/worker_pool.h"
#include "layer_test_util.h"
#include "oci_layout_writer.h"
#include "postgres_fixture.h"
#include "rabbitmq_fixture.h"
#include "scan_fixture.h"

extern char** environ;

namespace {

namespace fs = std::filesystem;
using namespace hashsieve;
using Steady = std::chrono::steady_clock;

struct Backend {
  std::string name;     // "rabbitmq+postgres" or "embedded"
  std::string queue;    // config `queue:`
  bool postgres = false;
};

struct Run {
  double wall_s = 0;
  double jobs_per_s = 0;
  double cpu_s = 0;          // user + system of the worker processes
  double commits_per_s = 0;  // PostgreSQL only
  double rows_per_s = 0;     // inserted + updated + deleted, PostgreSQL only
};

pid_t spawn(const std::vector<std::string>& argv, const std::string& log) {
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 2, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, args[0], &fa, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  return rc == 0 ? pid : -1;
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

// Commits and rows written in database `db` so far (the statistics are
// flushed about once a second, so callers wait before reading).
std::pair<double, double> pg_writes(testsupport::PostgresCluster& pg, const std::string& db) {
  std::string commits, rows;
  (void)pg.execute(db, "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()", &commits);
  (void)pg.execute(db,
                   "SELECT tup_inserted + tup_updated + tup_deleted FROM pg_stat_database"
                   " WHERE datname = current_database()",
                   &rows);
  return {std::atof(commits.c_str()), std::atof(rows.c_str())};
}

}  // namespace

int main(int argc, char** argv) {
  const int jobs = argc > 1 ? std::atoi(argv[1]) : 16;
  const std::size_t unknown_bytes = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : (1u << 20);
  const int rounds = argc > 3 ? std::atoi(argv[3]) : 3;
  const std::string binary = argc > 4 ? argv[4] : std::string(HASHSIEVE_BINARY_DIR) + "/hashsieve";
  if (jobs < 1 || rounds < 1) {
    std::fprintf(stderr, "usage: worker_throughput [JOBS] [UNKNOWN_BYTES_PER_IMAGE] [ROUNDS] [HASHSIEVE_BINARY]\n");
    return 2;
  }
  scan::testing::TempDir work;
  const fs::path root = work.path();

  // One known file in the shared reference set; each image adds fresh bytes.
  const auto known = scan::testing::random_bytes(20000, 1);
  const std::string data_dir = (root / "data").string();
  {
    auto catalog = refset::RefsetCatalog::open(data_dir);
    if (!catalog.ok()) return std::fprintf(stderr, "%s\n", catalog.error().message().c_str()), 1;
    scan::testing::write_file(root / "src/usr/bin/ls", known);
    refset::BuildRequest req;
    req.name = "distro";
    req.set_class = refset::ReferenceClass::known;
    req.paths = {(root / "src").string()};
    auto r = refset::build_refset(*catalog, req);
    if (!r.ok()) return std::fprintf(stderr, "%s\n", r.error().message().c_str()), 1;
  }
  std::vector<std::string> refs;
  for (int i = 0; i < jobs; ++i) {
    const fs::path dir = root / "images" / std::to_string(i);
    image::testing::OciLayoutWriter w(dir);
    image::testing::TarBuilder tar;
    tar.file("usr/bin/ls", std::string(known.begin(), known.end()));
    const auto fresh = scan::testing::random_bytes(unknown_bytes, 1000 + i);
    tar.file("opt/data", std::string(fresh.begin(), fresh.end()));
    const auto b = tar.build();
    const auto img =
        w.image("linux", "amd64", {{"application/vnd.oci.image.layer.v1.tar", b, image::testing::sha256(b)}});
    w.tag("1.0", image::media_type::kOciManifest, img.manifest);
    refs.push_back("oci:" + dir.string() + ":1.0");
  }

  std::vector<Backend> backends;
  testsupport::RabbitMqFixture broker;
  const std::string broker_error = broker.start();
  auto& pg = testsupport::PostgresCluster::instance();
  if (!broker_error.empty()) {
    std::printf("# rabbitmq+postgres skipped: %s\n", broker_error.c_str());
  } else if (!pg.skip_reason().empty() || !pg.error().empty()) {
    std::printf("# rabbitmq+postgres skipped: %s%s\n", pg.skip_reason().c_str(), pg.error().c_str());
  } else {
    backends.push_back({"rabbitmq+postgres", broker.url(), true});
  }
  backends.push_back({"embedded", "", false});

  std::map<std::string, std::vector<Run>> results;  // "<backend> W=<n>"
  std::printf("# %d jobs, %zu unknown bytes each, %d rounds\n", jobs, unknown_bytes, rounds);
  std::printf("%-18s %3s %5s %8s %8s %8s %10s %10s\n", "backend", "W", "round", "wall_s", "jobs/s", "cpu_s",
              "commits/s", "rows/s");
  int seq = 0;
  for (int round = 1; round <= rounds; ++round) {
    for (const auto& be : backends) {
      for (int workers : {1, 2}) {
        // A fresh queue and store: nothing cached, nothing left over.
        std::string store_url, db;
        if (be.postgres) {
          store_url = pg.create_database();
          db = store_url.substr(store_url.find("///") + 3);
          db = db.substr(0, db.find('?'));
        }
        for (const char* f : {"store.db", "store.db-wal", "store.db-shm", "queue.db", "queue.db-wal", "queue.db-shm"}) {
          fs::remove(fs::path(data_dir) / f);
        }
        ++seq;
        const std::string config = (root / ("worker" + std::to_string(seq) + ".yaml")).string();
        {
          std::ofstream out(config);
          out << "data_dir: " << data_dir << "\n";
          if (!be.queue.empty()) out << "queue: " << be.queue << "\n";
          if (!store_url.empty()) out << "store: \"" << store_url << "\"\n";
          out << "workers:\n  count: 1\n  stop_deadline_seconds: 5\n";
        }
        auto stores = store::open_store(store_url.empty() ? data_dir : store_url);
        if (!stores.ok()) return std::fprintf(stderr, "%s\n", stores.error().message().c_str()), 1;
        auto q = queue::open_queue(be.queue.empty() ? "embedded" : be.queue, data_dir, {}, {});
        if (!q.ok()) return std::fprintf(stderr, "%s\n", q.error().message().c_str()), 1;
        if (be.postgres) {
          // The broker's queue outlives a run: drain what an aborted run left.
          while (true) {
            auto d = (*q)->receive(std::chrono::milliseconds(100));
            if (!d.ok() || !d->has_value()) break;
            (void)(*q)->ack(**d);
          }
        }
        for (int i = 0; i < jobs; ++i) {
          auto e = worker::enqueue_scan(*stores->jobs, **q, {"bench/" + std::to_string(i), refs[i], "",
                                                             store::JobSource::api, false});
          if (!e.ok()) return std::fprintf(stderr, "enqueue: %s\n", e.error().message().c_str()), 1;
        }
        q->reset();  // a queue object that received would hold prefetched deliveries
        std::pair<double, double> before{0, 0};
        if (be.postgres) {
          // Closing our connections flushes their statistics (migrations,
          // enqueues), so the baseline holds them and the run only the workers'.
          *stores = store::StoreSet{};
          std::this_thread::sleep_for(std::chrono::milliseconds(1200));
          before = pg_writes(pg, db);
          stores = store::open_store(store_url);
          if (!stores.ok()) return std::fprintf(stderr, "%s\n", stores.error().message().c_str()), 1;
        }
        double polls = 0;  // our own read transactions, subtracted from the commits
        const auto t0 = Steady::now();
        std::vector<pid_t> pids;
        for (int w = 0; w < workers; ++w) {
          pids.push_back(spawn({binary, "worker", "--config", config},
                               (root / ("worker" + std::to_string(seq) + "_" + std::to_string(w) + ".log")).string()));
        }
        std::uint64_t done = 0;
        while (Steady::now() - t0 < std::chrono::minutes(30)) {
          auto c = stores->jobs->count_jobs_by_state();
          ++polls;
          if (c.ok()) {
            done = (*c)[static_cast<int>(store::JobState::done)] + (*c)[static_cast<int>(store::JobState::failed)];
            if (done >= static_cast<std::uint64_t>(jobs)) break;
          }
          std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
        Run run;
        run.wall_s = std::chrono::duration<double>(Steady::now() - t0).count();
        run.jobs_per_s = jobs / run.wall_s;
        for (pid_t p : pids) {
          if (p <= 0) continue;
          ::kill(p, SIGTERM);
          int status = 0;
          rusage ru{};
          ::wait4(p, &status, 0, &ru);
          run.cpu_s += ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
        }
        if (done < static_cast<std::uint64_t>(jobs)) {
          std::fprintf(stderr, "%s W=%d: only %llu of %d jobs finished; see %s\n", be.name.c_str(), workers,
                       static_cast<unsigned long long>(done), jobs, root.c_str());
          return 1;
        }
        if (be.postgres) {
          *stores = store::StoreSet{};
          std::this_thread::sleep_for(std::chrono::milliseconds(1200));
          const auto after = pg_writes(pg, db);
          run.commits_per_s = (after.first - before.first - polls) / run.wall_s;
          run.rows_per_s = (after.second - before.second) / run.wall_s;
        }
        std::printf("%-18s %3d %5d %8.2f %8.2f %8.2f %10.1f %10.1f\n", be.name.c_str(), workers, round, run.wall_s,
                    run.jobs_per_s, run.cpu_s, run.commits_per_s, run.rows_per_s);
        std::fflush(stdout);
        results[be.name + " W=" + std::to_string(workers)].push_back(run);
      }
    }
  }
  std::printf("# medians\n");
  for (const auto& be : backends) {
    double jps[3] = {0, 0, 0};
    for (int workers : {1, 2}) {
      const auto& runs = results[be.name + " W=" + std::to_string(workers)];
      std::vector<double> wall, rate, cpu, commits, rows;
      for (const auto& r : runs) {
        wall.push_back(r.wall_s);
        rate.push_back(r.jobs_per_s);
        cpu.push_back(r.cpu_s / jobs);
        commits.push_back(r.commits_per_s);
        rows.push_back(r.rows_per_s);
      }
      jps[workers] = median(rate);
      std::printf("%-18s W=%d wall %.2f s, %.2f jobs/s, %.3f worker CPU s/job, %.1f commits/s, %.1f rows/s\n",
                  be.name.c_str(), workers, median(wall), median(rate), median(cpu), median(commits), median(rows));
    }
    std::printf("%-18s 2 workers / 1 worker: %.2fx\n", be.name.c_str(), jps[1] > 0 ? jps[2] / jps[1] : 0.0);
  }
  return 0;
}
