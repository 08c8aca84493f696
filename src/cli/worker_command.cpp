// `hashsieve worker --config FILE`: a scan worker process without HTTP. It
// consumes the job queue named by the config (`queue:`, RabbitMQ for many
// hosts), writes results to the configured store (`store:`, PostgreSQL for
// many hosts) and matches against the reference sets under data_dir, which
// on many hosts is a shared read-only path. Each set's manifest fingerprint
// is checked every few seconds; when a set is replaced (a new version, a
// changed fingerprint) the worker drains, reloads the sets and goes on, so a
// fleet never matches with a half-written set. See docs/scale-out.md.
#include <pthread.h>
#include <signal.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <memory>
#include <string>
#include <vector>

#include "commands.h"
#include "hashsieve/queue/open_queue.h"
#include "hashsieve/refset/catalog.h"
#include "hashsieve/scan/matcher.h"
#include "hashsieve/scanners/scanner_set.h"
#include "hashsieve/service/config.h"
#include "hashsieve/store/open_store.h"
#include "hashsieve/worker/worker_pool.h"

namespace hashsieve::cli {
namespace {

constexpr const char* kWorkerUsage =
    "usage: hashsieve worker --config FILE [--reload-seconds N]\n"
    "\n"
    "Consumes scan jobs from the configured queue with workers.count threads and\n"
    "serves no HTTP. Uses the same configuration as `serve` (webhook and API\n"
    "options are ignored): data_dir (reference sets, may be a shared path),\n"
    "queue (embedded or amqp://...), store (empty or postgres://...),\n"
    "workers.count, registry.*, scanners.* (opened with scanners.image_scans;\n"
    "one that cannot be opened stops the worker at start-up). Stops on\n"
    "SIGTERM/SIGINT, releasing unfinished jobs within\n"
    "workers.stop_deadline_seconds. A store that is unavailable\n"
    "(PostgreSQL down or restarting) is waited for with backoff, at start-up\n"
    "and during jobs, never a reason to exit; so is a broker (RabbitMQ).\n"
    "\n"
    "options:\n"
    "  --config FILE        YAML configuration (default: environment only)\n"
    "  --reload-seconds N   how often to check the reference sets' fingerprints (default 5)\n";

void log_line(const std::string& line) {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &tm);
  std::fprintf(stderr, "%s hashsieve worker: %s\n", stamp, line.c_str());
}

// Calls `open` until it succeeds or fails with anything but unavailable,
// waiting 100 ms doubling to 5 s between attempts; a SIGTERM or SIGINT
// (blocked in `stop_signals`) during a wait sets `stopped` and ends it.
template <typename Open>
auto open_waiting_out_outages(const std::string& what, const sigset_t& stop_signals, bool& stopped, Open open)
    -> decltype(open()) {
  auto opened = open();
  for (long wait_ms = 100; !opened && opened.error().code() == ErrorCode::unavailable;
       wait_ms = std::min(wait_ms * 2, 5000L)) {
    log_line(what + " unavailable, retrying in " + std::to_string(wait_ms) + " ms: " + opened.error().message());
    const timespec pause{wait_ms / 1000, (wait_ms % 1000) * 1000000L};
    const int sig = sigtimedwait(&stop_signals, nullptr, &pause);
    if (sig == SIGTERM || sig == SIGINT) {
      log_line("stopped while waiting for the " + what);
      stopped = true;
      return opened;
    }
    opened = open();
  }
  return opened;
}

// The sets a worker matches with, and what identifies them on disk.
struct LoadedSets {
  std::vector<refset::LoadedRefset> sets;
  std::unique_ptr<scan::PathIndex> paths;
  std::string identity;  // name@version:fingerprint per set
};

// name@version:fingerprint of each configured set (all installed when empty),
// read from the manifests only: cheap enough to poll.
Result<std::string> sets_identity(const refset::RefsetCatalog& catalog, const std::vector<std::string>& wanted,
                                  std::vector<std::string>* names_out) {
  std::vector<std::string> names = wanted;
  if (names.empty()) {
    auto all = catalog.list();
    if (!all) return std::move(all).error().with_context("listing the reference sets");
    for (const auto& m : *all) names.push_back(m.name);
  }
  std::string identity;
  for (const auto& name : names) {
    auto m = catalog.manifest(name);
    if (!m) return std::move(m).error().with_context("reference set " + name);
    identity += name + "@" + std::to_string(m->version) + ":" + m->fingerprint + "\n";
  }
  if (names_out != nullptr) *names_out = std::move(names);
  return identity;
}

Result<LoadedSets> load_sets(const refset::RefsetCatalog& catalog, const std::vector<std::string>& wanted) {
  LoadedSets out;
  std::vector<std::string> names;
  auto identity = sets_identity(catalog, wanted, &names);
  if (!identity) return std::move(identity).error();
  for (const auto& name : names) {
    auto loaded = catalog.load(name);
    if (!loaded) return std::move(loaded).error().with_context("loading reference set " + name);
    out.sets.push_back(std::move(loaded).value());
  }
  // The manifests may have changed while loading: the identity recorded is
  // the one of the sets actually loaded.
  std::string loaded_identity;
  for (const auto& s : out.sets) {
    loaded_identity += s.manifest().name + "@" + std::to_string(s.manifest().version) + ":" +
                       s.manifest().fingerprint + "\n";
  }
  out.identity = std::move(loaded_identity);
  out.paths = scan::make_refset_path_index(out.sets);
  return out;
}

}  // namespace

int run_worker(const std::vector<std::string>& args) {
  std::string config_path;
  int reload_seconds = 5;
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--help" || args[i] == "-h") {
      std::fputs(kWorkerUsage, stdout);
      return kExitOk;
    }
    if (args[i] == "--config" && i + 1 < args.size()) {
      config_path = args[++i];
    } else if (args[i].starts_with("--config=")) {
      config_path = args[i].substr(9);
    } else if (args[i] == "--reload-seconds" && i + 1 < args.size()) {
      try {
        reload_seconds = std::stoi(args[++i]);
      } catch (const std::exception&) {
        reload_seconds = -1;
      }
      if (reload_seconds < 1 || reload_seconds > 86400) {
        std::fprintf(stderr, "hashsieve worker: --reload-seconds wants 1..86400, got '%s'\n", args[i].c_str());
        return kExitUsage;
      }
    } else {
      std::fprintf(stderr, "hashsieve worker: unknown argument '%s'\n%s", args[i].c_str(), kWorkerUsage);
      return kExitUsage;
    }
  }
  auto config = service::load_config(config_path, service::ConfigUse::worker);
  if (!config) {
    std::fprintf(stderr, "hashsieve worker: %s\n", config.error().message().c_str());
    return kExitUsage;
  }
  if (config->workers.count < 1) {
    std::fprintf(stderr, "hashsieve worker: workers.count must be at least 1\n");
    return kExitUsage;
  }
  // The third-party scanners (scanners:) are opened only for image scans, the
  // one use a worker has for them; opening them here makes a missing rules
  // directory or an unreachable clamd fail at start-up, not in every job.
  scanners::ScannerSet external_scanners;
  if (config->scanners.image_scans) {
    auto opened = scanners::open_scanners(config->scanners.engines);
    if (!opened) {
      std::fprintf(stderr, "hashsieve worker: opening the third-party scanners (scanners:): %s\n",
                   opened.error().message().c_str());
      return kExitFailure;
    }
    external_scanners = std::move(*opened);
    for (const auto& w : external_scanners.warnings) log_line("scanners: warning: " + w.message);
    for (const auto& s : external_scanners.scanners) {
      log_line("scanner " + s->name() + " " + s->version() + " (" + s->signature_version() + ")");
    }
  } else if (!config->scanners.engines.empty()) {
    log_line("scanners configured but scanners.image_scans is false: this worker does not run them");
  }
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  // A store or broker that is not there yet (PostgreSQL or RabbitMQ starting
  // or restarting) is waited for, with backoff, until a stop signal: a worker
  // started during an outage must not exit (ADR 0018). Any other error is a
  // configuration problem and fails at once.
  bool stopped = false;
  auto stores = open_waiting_out_outages(
      "job store", stop_signals, stopped,
      [&] { return store::open_store(config->store.empty() ? config->data_dir : config->store); });
  if (stopped) return kExitOk;
  if (!stores) {
    std::fprintf(stderr, "hashsieve worker: opening the job store: %s\n", stores.error().message().c_str());
    return kExitFailure;
  }
  queue::RabbitMqOptions rabbit;
  rabbit.prefetch = static_cast<std::uint16_t>(config->workers.count);  // one delivery per worker thread
  auto queue = open_waiting_out_outages("job queue", stop_signals, stopped, [&] {
    return queue::open_queue(config->queue, config->data_dir, {}, rabbit);
  });
  if (stopped) return kExitOk;
  if (!queue) {
    std::fprintf(stderr, "hashsieve worker: opening the job queue: %s\n", queue.error().message().c_str());
    return kExitFailure;
  }
  auto catalog = refset::RefsetCatalog::open(config->data_dir);
  if (!catalog) {
    std::fprintf(stderr, "hashsieve worker: %s\n", catalog.error().message().c_str());
    return kExitFailure;
  }
  auto sets = load_sets(*catalog, config->refsets);
  if (!sets) {
    std::fprintf(stderr, "hashsieve worker: %s\n", sets.error().message().c_str());
    return kExitFailure;
  }

  const auto deadline = std::chrono::duration_cast<std::chrono::milliseconds>(config->workers.stop_deadline);
  auto make_pool = [&](LoadedSets& s) {
    worker::WorkerEnvironment env;
    env.store = stores->store.get();
    env.jobs = stores->jobs.get();
    env.queue = queue->get();
    env.sets = &s.sets;
    env.paths = s.paths.get();
    worker::WorkerOptions options;
    options.workers = static_cast<unsigned>(config->workers.count);
    options.source.insecure = config->registry.insecure;
    options.source.ca_file = config->registry.ca_file;
    options.source.credentials.username = config->registry.username;
    options.source.credentials.password = config->registry.password;
    options.source.credentials.bearer_token = config->registry.token;
    options.scan.external_scanners = external_scanners.pointers();  // empty unless scanners.image_scans
    options.on_outcome = [](const worker::JobOutcome& o) {
      log_line("job " + std::to_string(o.job_id) + " " + std::string(store::to_string(o.state)) +
               (o.error_code.empty() ? "" : " (" + o.error_code + ")") + " in " +
               std::to_string(o.duration.count()) + " ms");
    };
    options.on_store_wait = [](const Error& e, std::chrono::milliseconds delay) {
      log_line("job store unavailable, retrying in " + std::to_string(delay.count()) + " ms: " + e.message());
    };
    options.on_queue_error = [](const Error* e) {
      log_line(e != nullptr ? std::string("job queue: ").append(e->message()).append(" (retrying)")
                        : std::string("job queue: receiving again"));
    };
    return std::make_unique<worker::WorkerPool>(env, std::move(options));
  };
  auto pool = make_pool(*sets);
  if (auto st = pool->start(); !st) {
    std::fprintf(stderr, "hashsieve worker: %s\n", st.error().message().c_str());
    return kExitFailure;
  }
  log_line("started " + std::to_string(config->workers.count) + " workers, " + std::to_string(sets->sets.size()) +
           " reference sets, fingerprint " + worker::refset_fingerprint(sets->sets));

  const timespec tick{reload_seconds, 0};
  while (true) {
    const int sig = sigtimedwait(&stop_signals, nullptr, &tick);
    if (sig == SIGTERM || sig == SIGINT) {
      log_line(std::string(sig == SIGTERM ? "SIGTERM" : "SIGINT") + " received, draining");
      break;
    }
    // A set replaced under the shared path: drain, reload, go on. A set that
    // cannot be read now (half-copied) keeps the old ones in use.
    auto now = sets_identity(*catalog, config->refsets, nullptr);
    if (!now) {
      log_line("warning: reference sets unreadable, keeping the loaded ones: " + now.error().message());
      continue;
    }
    if (*now == sets->identity) continue;
    auto fresh = load_sets(*catalog, config->refsets);
    if (!fresh) {
      log_line("warning: reloading the reference sets failed, keeping the loaded ones: " + fresh.error().message());
      continue;
    }
    const auto report = pool->stop(deadline);
    log_line("reference sets changed; reloaded (" + std::to_string(report.released) + " jobs released)");
    pool.reset();
    sets = std::move(fresh);
    pool = make_pool(*sets);
    if (auto st = pool->start(); !st) {
      log_line("error: restarting the workers: " + st.error().message());
      return kExitFailure;
    }
  }
  const auto report = pool->stop(deadline);
  log_line("stopped: " + std::to_string(report.finished) + " jobs finished during the drain, " +
           std::to_string(report.released) + " released back to the queue");
  return kExitOk;
}

}  // namespace hashsieve::cli
