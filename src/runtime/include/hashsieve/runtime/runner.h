// The runtime scanner's loop: list the running containers, scan what the
// scheduler says is due (concurrently, bounded), store each result and the
// schedule state, and follow the engine's events. `hashsieve runtime
// --once` is one tick with every container due.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "hashsieve/core/result.h"
#include "hashsieve/runtime/drift.h"
#include "hashsieve/runtime/engine.h"
#include "hashsieve/runtime/scheduler.h"
#include "hashsieve/store/container_store.h"
#include "hashsieve/store/store.h"

namespace hashsieve::runtime {

struct TickResult {
  std::vector<ContainerScan> scans;  // every container scanned in this tick, in order of completion
  std::vector<DriftError> errors;    // engine-level: the container list could not be read
};

struct RunnerOptions {
  // Upper bound on the wait between ticks when nothing is due, so containers
  // started while the event stream was down are still found.
  std::chrono::milliseconds list_interval{std::chrono::seconds(60)};
  // Wait before reconnecting a failed event stream.
  std::chrono::milliseconds event_retry{std::chrono::seconds(5)};
  // Called after each container scan (on the ticking thread), e.g. to log it.
  std::function<void(const ContainerScan&)> on_scan;
  // Called by run() after each tick (e.g. sweep metrics in `serve`).
  std::function<void(const TickResult&)> on_tick;
};

class Runner {
 public:
  // `results` and `image_scans` may be null (nothing stored, no image link).
  Runner(Engine& engine, const DriftScanner& drift, Scheduler& scheduler, const Clock& clock,
         store::ContainerStore* results, store::Store* image_scans, RunnerOptions options = {});

  // Restores the scheduler from the store (when there is one).
  Status restore();
  // Lists the running containers and scans every due one. Failures are
  // recorded (TickResult::errors, ContainerScan::errors) and logged; they
  // never stop the runner.
  TickResult tick();
  // Ticks until `stop`, waking when something is due, on events and at
  // least every list_interval; follows the event stream on a thread.
  void run(const std::atomic<bool>& stop);
  // Wakes run() (tests, signal handlers).
  void notify();

 private:
  void record(ContainerScan& scan);
  void link_image(ContainerScan& scan);

  Engine& engine_;
  const DriftScanner& drift_;
  Scheduler& scheduler_;
  const Clock& clock_;
  store::ContainerStore* results_;
  store::Store* image_scans_;
  RunnerOptions options_;
  std::mutex mutex_;  // guards scheduler_ between the event thread and ticks
  std::condition_variable wake_;
  bool woken_ = false;
  std::vector<store::ScanRecord> image_records_;  // refreshed per tick
};

}  // namespace hashsieve::runtime
