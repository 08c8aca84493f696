// `hashsieve runtime`: scan running containers through the Docker Engine API
// (or Podman's compatible service): the drift of each container's writable
// layer, hashed and matched against the reference sets, plus the configured
// third-party scanners. --once sweeps once and prints a report; without it
// the scheduler runs until SIGINT/SIGTERM, storing every result.
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <optional>
#include <random>
#include <string>

#include "commands.h"
#include "common_options.h"
#include "hashsieve/refset/catalog.h"
#include "hashsieve/runtime/drift.h"
#include "hashsieve/runtime/engine.h"
#include "hashsieve/runtime/report.h"
#include "hashsieve/runtime/runner.h"
#include "hashsieve/runtime/scheduler.h"
#include "hashsieve/scan/report.h"
#include "hashsieve/scanners/scanner_set.h"
#include "hashsieve/store/container_store.h"
#include "hashsieve/store/store.h"

namespace hashsieve::cli {
namespace {

constexpr const char* kRuntimeUsage =
    "usage: hashsieve runtime [options]\n"
    "\n"
    "Scans the drift (added, modified, deleted files) of running containers.\n"
    "\n"
    "  --docker-host URI       engine socket, unix://PATH (default $DOCKER_HOST when it is\n"
    "                          unix://, else unix:///var/run/docker.sock; Podman:\n"
    "                          unix:///run/podman/podman.sock)\n"
    "  --once                  sweep every running container once, print a report, exit\n"
    "  --full                  scan every file of each container (GET /export, streamed),\n"
    "                          not only its drift\n"
    "  --data-dir DIR          reference sets and the store (as for `scan`)\n"
    "  --set NAME              match against this set (repeatable; default: every installed set)\n"
    "  --format F              table | json | sarif (--once; default: table on a terminal, else json)\n"
    "  --output FILE           write the report to FILE instead of stdout (--once)\n"
    "  --fail-on V             exit 4 when a container's verdict is V or worse (--once):\n"
    "                          malicious | suspicious | modified | unknown\n"
    "  --interval D            full sweep interval (default 1h); D is N, Ns, Nm or Nh\n"
    "  --min-interval D        minimum time between two scans of a container (default 30s)\n"
    "  --jitter F              sweep jitter as a fraction of the interval, 0..0.5 (default 0.1)\n"
    "  --concurrency N         containers scanned at once (default 2)\n"
    "  --max-file-bytes N      larger drifted files are not fetched (default 64 MiB)\n"
    "  --clamav-db PATH        ClamAV database file or directory for libclamav (repeatable)\n"
    "  --clamd-socket PATH     scan drifted files with a running clamd\n"
    "  --yara-rules DIR        scan drifted files with the YARA rules in DIR\n"
    "\n"
    "Exit status: 0 done; 1 failure (engine unreachable, bad data); 2 bad arguments;\n"
    "3 (--once) done, but some files or containers could not be scanned;\n"
    "4 (--once) the worst container verdict reached --fail-on.\n";

int usage_error(const std::string& message) {
  std::fprintf(stderr, "hashsieve runtime: %s\n%s", message.c_str(), kRuntimeUsage);
  return kExitUsage;
}

int failure(const Error& e) {
  std::fprintf(stderr, "hashsieve runtime: %s\n", e.message().c_str());
  return kExitFailure;
}

// "90", "90s", "15m", "1h" -> milliseconds; at least one second.
std::optional<std::chrono::milliseconds> parse_duration(std::string text) {
  std::uint64_t unit = 1000;
  if (!text.empty() && (text.back() == 's' || text.back() == 'm' || text.back() == 'h')) {
    unit = text.back() == 's' ? 1000 : text.back() == 'm' ? 60'000 : 3'600'000;
    text.pop_back();
  }
  auto n = parse_uint(text);
  if (!n || *n == 0 || *n > 366ULL * 24 * 3600) return std::nullopt;
  return std::chrono::milliseconds(*n * unit);
}

struct RuntimeArgs {
  runtime::DockerEngineOptions engine;
  bool once = false;
  std::string data_dir;
  std::vector<std::string> sets;
  std::string format;
  std::string output;
  std::optional<scan::Verdict> fail_on;
  runtime::SchedulerOptions schedule;
  runtime::DriftOptions drift;
  scanners::ScannerConfig externals;
};

std::optional<int> parse(const std::vector<std::string>& args, RuntimeArgs& out) {
  if (const char* h = std::getenv("DOCKER_HOST"); h != nullptr && std::string(h).rfind("unix://", 0) == 0) {
    out.engine.host = h;
  }
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto value = [&]() -> std::optional<std::string> {
      if (i + 1 >= args.size() || args[i + 1].empty()) return std::nullopt;
      return args[++i];
    };
    if (a == "--help" || a == "-h") {
      std::fputs(kRuntimeUsage, stdout);
      return kExitOk;
    } else if (a == "--once") {
      out.once = true;
    } else if (a == "--full") {
      out.drift.full = true;
    } else if (a == "--docker-host" || a == "--data-dir" || a == "--set" || a == "--format" || a == "--output" ||
               a == "--fail-on" || is_external_scanner_flag(a)) {
      auto v = value();
      if (!v) return usage_error(a + " needs a value");
      if (a == "--docker-host") {
        if (v->rfind("unix://", 0) != 0 || v->size() == 7) return usage_error("--docker-host must be unix://PATH");
        out.engine.host = *v;
      }
      if (a == "--data-dir") out.data_dir = *v;
      if (a == "--set") out.sets.push_back(*v);
      if (a == "--format") {
        if (auto e = check_format(*v)) return usage_error(*e);
        out.format = *v;
      }
      if (a == "--output") out.output = *v;
      if (a == "--fail-on") {
        out.fail_on = parse_fail_on(*v);
        if (!out.fail_on) return usage_error(kFailOnError);
      }
      apply_external_scanner_flag(a, *v, out.externals);
    } else if (a == "--interval" || a == "--min-interval") {
      auto v = value();
      auto d = v ? parse_duration(*v) : std::nullopt;
      if (!d) return usage_error(a + " needs a duration: N, Ns, Nm or Nh (N > 0)");
      (a == "--interval" ? out.schedule.sweep_interval : out.schedule.min_interval) = *d;
    } else if (a == "--jitter") {
      auto v = value();
      char* end = nullptr;
      const double f = v ? std::strtod(v->c_str(), &end) : -1;
      if (!v || end == v->c_str() || *end != '\0' || f < 0 || f > 0.5) return usage_error("--jitter needs 0..0.5");
      out.schedule.jitter = f;
    } else if (a == "--concurrency" || a == "--max-file-bytes") {
      auto v = value();
      // 0 is invalid for both, so it also stands for "not a number".
      const std::uint64_t n = v ? parse_uint(*v).value_or(0) : 0;
      if (a == "--concurrency") {
        if (n == 0 || n > 64) return usage_error("--concurrency needs a number 1..64");
        out.schedule.max_concurrency = static_cast<unsigned>(n);
      } else {
        if (n == 0) return usage_error("--max-file-bytes needs a positive number");
        out.drift.max_file_bytes = n;
      }
    } else {
      return usage_error("unknown argument '" + a + "'");
    }
  }
  if (auto e = check_external_scanner_flags(out.externals)) return usage_error(*e);
  if (!out.once && (!out.format.empty() || !out.output.empty() || out.fail_on)) {
    return usage_error("--format, --output and --fail-on go with --once");
  }
  return std::nullopt;
}

std::atomic<bool> g_stop{false};
extern "C" void on_signal(int) { g_stop.store(true); }

}  // namespace

int run_runtime(const std::vector<std::string>& args) {
  RuntimeArgs a;
  if (auto code = parse(args, a)) return *code;
  if (a.data_dir.empty()) a.data_dir = refset::default_data_dir();
  if (a.format.empty()) a.format = (a.output.empty() && ::isatty(STDOUT_FILENO) == 1) ? "table" : "json";

  auto loaded_sets = load_named_sets(a.data_dir, a.sets);
  if (!loaded_sets.ok()) return failure(loaded_sets.error());
  const std::vector<refset::LoadedRefset> sets = std::move(loaded_sets).value();
  const auto paths = scan::make_refset_path_index(sets);

  a.externals.limits.max_bytes = a.drift.max_file_bytes;
  auto externals = scanners::open_scanners(a.externals);
  if (!externals.ok()) return failure(externals.error());
  for (const auto& w : externals->warnings) std::fprintf(stderr, "hashsieve runtime: warning: %s\n", w.message.c_str());
  const std::vector<const scanners::ExternalScanner*> external_ptrs = externals->pointers();

  auto engine = runtime::connect_docker_engine(a.engine);
  if (!engine.ok()) return failure(engine.error());

  // Results and schedule state; without a store the sweep still runs.
  std::unique_ptr<store::ContainerStore> results;
  std::unique_ptr<store::Store> image_scans;
  if (auto s = store::open_sqlite_container_store(a.data_dir); s.ok()) {
    results = std::move(s).value();
  } else {
    std::fprintf(stderr, "hashsieve runtime: warning: results not stored: %s\n", s.error().message().c_str());
  }
  if (auto s = store::open_sqlite_store(a.data_dir); s.ok()) {
    image_scans = std::move(s).value();
  } else {
    std::fprintf(stderr, "hashsieve runtime: warning: no image scans to link: %s\n", s.error().message().c_str());
  }

  runtime::DriftScanner drift(sets, paths.get(), external_ptrs, a.drift);
  runtime::SystemClock clock;
  runtime::RunnerOptions runner_options;
  runner_options.on_scan = [&](const runtime::ContainerScan& s) {
    if (a.once) return;
    std::fprintf(stderr, "hashsieve runtime: container %s (%s): %s, %zu drifted files%s, %zu errors\n",
                 s.container.name.c_str(), s.container.id.substr(0, 12).c_str(),
                 std::string(scan::to_string(s.verdict)).c_str(), runtime::drifted_files(s),
                 s.full ? (" of " + std::to_string(s.files.size()) + " scanned").c_str() : "", s.errors.size());
  };

  if (a.once) {
    // Every running container is due: a fresh scheduler with no history.
    runtime::Scheduler scheduler(a.schedule, clock, std::random_device{}());
    runtime::Runner runner(**engine, drift, scheduler, clock, results.get(), image_scans.get(), runner_options);
    auto tick = runner.tick();
    if (!tick.errors.empty()) return failure(Error(tick.errors[0].code, tick.errors[0].message));
    std::string text;
    if (a.format == "json") {
      text = runtime::write_runtime_json(tick.scans, HASHSIEVE_VERSION, utc_now());
    } else if (a.format == "sarif") {
      text = scan::write_sarif_report(runtime::to_image_reports(tick.scans), {HASHSIEVE_VERSION});
    } else {
      text = scan::write_table_report(runtime::to_image_reports(tick.scans), {});
    }
    if (a.output.empty()) {
      std::fwrite(text.data(), 1, text.size(), stdout);
      std::fflush(stdout);
    } else {
      std::ofstream out(a.output, std::ios::binary | std::ios::trunc);
      out << text;
      out.close();
      if (!out) return failure(Error(ErrorCode::io_error, "writing " + a.output));
    }
    scan::Verdict worst = scan::Verdict::known;
    bool errors = false;
    for (const auto& s : tick.scans) {
      worst = std::max(worst, s.verdict);
      errors = errors || !s.errors.empty();
    }
    if (a.fail_on && worst >= *a.fail_on) return kExitPolicy;
    return errors ? kExitPartial : kExitOk;
  }

  runtime::Scheduler scheduler(a.schedule, clock, std::random_device{}());
  runtime::Runner runner(**engine, drift, scheduler, clock, results.get(), image_scans.get(), runner_options);
  if (auto st = runner.restore(); !st.ok()) {
    std::fprintf(stderr, "hashsieve runtime: warning: %s; starting with an empty schedule\n",
                 st.error().message().c_str());
  }
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  std::fprintf(stderr, "hashsieve runtime: watching %s (sweep every %llds)\n", a.engine.host.c_str(),
               static_cast<long long>(a.schedule.sweep_interval.count() / 1000));
  runner.run(g_stop);
  return kExitOk;
}

}  // namespace hashsieve::cli
