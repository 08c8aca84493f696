#include "hashsieve/runtime/runner.h"

#include <cstdio>
#include <ctime>
#include <future>
#include <thread>

#include "hashsieve/runtime/report.h"

namespace hashsieve::runtime {
namespace {

std::string iso_utc(std::int64_t ms) {
  const std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

void log_error(const std::string& what, const Error& e) {
  std::fprintf(stderr, "hashsieve runtime: %s: %s\n", what.c_str(), e.message().c_str());
}

}  // namespace

Runner::Runner(Engine& engine, const DriftScanner& drift, Scheduler& scheduler, const Clock& clock,
               store::ContainerStore* results, store::Store* image_scans, RunnerOptions options)
    : engine_(engine),
      drift_(drift),
      scheduler_(scheduler),
      clock_(clock),
      results_(results),
      image_scans_(image_scans),
      options_(options) {}

Status Runner::restore() {
  if (results_ == nullptr) return {};
  auto states = results_->list_schedule();
  if (!states.ok()) return std::move(states).error().with_context("restoring the schedule");
  std::lock_guard lock(mutex_);
  scheduler_.restore(*states);
  return {};
}

void Runner::link_image(ContainerScan& scan) {
  // Newest first: the first scan of the same image wins. An image scan is
  // found by the name the container was created from, or by the image ID
  // when the scan was made from it (`hashsieve scan` of a docker-archive).
  for (const auto& r : image_records_) {
    if ((!scan.container.image.empty() && r.reference == scan.container.image) ||
        (!scan.container.image_id.empty() && r.image_digest == scan.container.image_id)) {
      scan.image_scan_id = r.id;
      scan.image_verdict = r.verdict;
      return;
    }
  }
}

void Runner::record(ContainerScan& scan) {
  link_image(scan);
  if (results_ == nullptr) return;
  store::ContainerRecord r;
  r.id = scan.container.id;
  r.name = scan.container.name;
  r.image = scan.container.image;
  r.image_id = scan.container.image_id;
  r.image_scan_id = scan.image_scan_id;
  r.scanned_at = iso_utc(clock_.now_ms());
  r.verdict = std::string(scan::to_string(scan.verdict));
  r.drifted_files = drifted_files(scan);
  r.errors = scan.errors.size();
  r.result_json = container_json(scan);
  if (auto st = results_->put_container_result(r); !st.ok()) log_error("storing the result of " + r.id, st.error());
}

TickResult Runner::tick() {
  TickResult out;
  auto running = engine_.list_containers();
  if (!running.ok()) {
    // The message already says what was asked of which engine.
    std::fprintf(stderr, "hashsieve runtime: %s\n", running.error().message().c_str());
    out.errors.push_back({"", running.error().code(), running.error().message()});
    return out;
  }
  std::map<std::string, ContainerSummary> by_id;
  std::vector<std::string> ids;
  for (const auto& c : *running) {
    by_id[c.id] = c;
    ids.push_back(c.id);
  }
  {
    std::lock_guard lock(mutex_);
    scheduler_.set_running(ids);
  }
  if (image_scans_ != nullptr) {
    auto records = image_scans_->list_scan_results(1000);
    if (records.ok()) {
      image_records_ = std::move(records).value();
    } else {
      log_error("reading image scans", records.error());
    }
  }
  for (;;) {
    std::vector<std::string> due;
    {
      std::lock_guard lock(mutex_);
      due = scheduler_.take_due();
    }
    if (due.empty()) break;
    // One batch of at most concurrency() scans at a time.
    std::vector<std::future<std::pair<Result<ContainerScan>, std::int64_t>>> jobs;
    for (const auto& id : due) {
      ContainerSummary c = by_id.count(id) ? by_id[id] : ContainerSummary{id, "", "", "", ""};
      jobs.push_back(std::async(std::launch::async, [this, c] {
        const auto start = std::chrono::steady_clock::now();
        auto r = drift_.scan(engine_, c);
        const auto took =
            std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start).count();
        return std::pair<Result<ContainerScan>, std::int64_t>(std::move(r), took);
      }));
    }
    for (std::size_t i = 0; i < jobs.size(); ++i) {
      auto [result, took] = jobs[i].get();
      ContainerScan scan;
      bool ok = true;
      if (result.ok()) {
        scan = std::move(result).value();
        // A scan cut short by the engine is retried like a failed one.
        for (const auto& e : scan.errors) ok = ok && e.code != ErrorCode::unavailable;
      } else {
        ok = false;
        log_error("container " + due[i].substr(0, 12), result.error());
        scan.container = by_id.count(due[i]) ? by_id[due[i]] : ContainerSummary{due[i], "", "", "", ""};
        scan.errors.push_back({"", result.error().code(), result.error().message()});
      }
      std::optional<store::ScheduleState> state;
      {
        std::lock_guard lock(mutex_);
        scheduler_.finished(due[i], ok, std::chrono::milliseconds(took));
        state = scheduler_.state(due[i]);
      }
      // A container that went away has nothing to store; the error is in
      // the tick result. A scan the engine cut short does not replace a
      // complete earlier result (its verdict could only be too mild); the
      // failure is in the schedule state and the retry comes soon.
      bool store_it = result.ok() || result.error().code() != ErrorCode::not_found;
      if (store_it && !ok && results_ != nullptr) {
        auto previous = results_->get_container_result(scan.container.id);
        store_it = !(previous.ok() && previous->has_value());
      }
      if (store_it) {
        record(scan);
      } else {
        link_image(scan);
      }
      if (results_ != nullptr && state) {
        if (auto st = results_->put_schedule(*state); !st.ok()) log_error("storing the schedule", st.error());
      }
      if (options_.on_scan) options_.on_scan(scan);
      out.scans.push_back(std::move(scan));
    }
  }
  return out;
}

void Runner::notify() {
  {
    std::lock_guard lock(mutex_);
    woken_ = true;
  }
  wake_.notify_all();
}

void Runner::run(const std::atomic<bool>& stop) {
  std::thread events([&] {
    while (!stop.load()) {
      auto st = engine_.watch_events(
          [&](const EngineEvent& e) {
            const auto verb = e.verb();
            if (e.type != "container" || e.actor_id.empty() || (verb != "start" && verb != "exec_start" && verb != "exec")) {
              return;  // Docker: exec_start; Podman: exec
            }
            {
              std::lock_guard lock(mutex_);
              scheduler_.on_event(e.actor_id);
              woken_ = true;
            }
            wake_.notify_all();
          },
          stop);
      if (stop.load()) break;
      if (!st.ok()) log_error("events", st.error());
      std::unique_lock lock(mutex_);
      wake_.wait_for(lock, options_.event_retry, [&] { return stop.load(); });
    }
  });
  while (!stop.load()) {
    const TickResult result = tick();
    if (options_.on_tick) options_.on_tick(result);
    std::unique_lock lock(mutex_);
    auto wait = options_.list_interval;
    if (auto next = scheduler_.next_due_ms()) {
      const auto until = std::chrono::milliseconds(std::max<std::int64_t>(0, *next - clock_.now_ms()));
      wait = std::min(wait, until);
    }
    // At least a little sleep: a failing engine must not make this spin.
    wait = std::max(wait, std::chrono::milliseconds(200));
    // Waits in slices of a second so a stop request (a signal handler can
    // only set the flag) is seen promptly; an idle runner wakes once a second.
    const auto deadline = std::chrono::steady_clock::now() + wait;
    while (!woken_ && !stop.load() && std::chrono::steady_clock::now() < deadline) {
      wake_.wait_for(lock, std::min<std::chrono::steady_clock::duration>(
                               std::chrono::seconds(1), deadline - std::chrono::steady_clock::now()));
    }
    woken_ = false;
  }
  wake_.notify_all();
  events.join();
}

}  // namespace hashsieve::runtime
