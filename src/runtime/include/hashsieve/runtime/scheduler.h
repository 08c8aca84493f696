// When each running container is scanned. Pure bookkeeping over a clock
// seam (a manual clock in tests): the runner asks what is due, scans it and
// reports back.
//
// Rules:
//   - every container is scanned once per sweep interval (default 1 h), its
//     next due time jittered by up to +-jitter of the interval so a fleet of
//     containers does not come due at the same instant;
//   - a start or exec event makes the container due at once, but never
//     sooner than min_interval after its previous scan; an event during a
//     scan is not consumed by it (the scan may have read the container
//     before the event's effects), so it brings another scan;
//   - order: never scanned first, then event-driven, then the most overdue;
//   - a failed scan is retried after min_interval * 2^(failures-1), capped at
//     the sweep interval;
//   - back-pressure: when a scan takes longer than slow_scan (the engine is
//     slow), the number of concurrent scans halves (at least 1); each fast
//     scan adds one back, up to max_concurrency.
// State (last scan, pending event, failures) is what store::ScheduleState
// holds, so a restarted scheduler carries on where it stopped.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "hashsieve/store/container_store.h"

namespace hashsieve::runtime {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual std::int64_t now_ms() const = 0;  // Unix milliseconds
};

class SystemClock final : public Clock {
 public:
  std::int64_t now_ms() const override;
};

class ManualClock final : public Clock {
 public:
  explicit ManualClock(std::int64_t start_ms) : now_(start_ms) {}
  std::int64_t now_ms() const override { return now_; }
  void advance(std::chrono::milliseconds d) { now_ += d.count(); }

 private:
  std::int64_t now_;
};

struct SchedulerOptions {
  std::chrono::milliseconds sweep_interval{std::chrono::hours(1)};
  double jitter = 0.1;  // fraction of sweep_interval, 0..0.5
  std::chrono::milliseconds min_interval{std::chrono::seconds(30)};
  unsigned max_concurrency = 2;
  std::chrono::milliseconds slow_scan{std::chrono::seconds(20)};
};

class Scheduler {
 public:
  Scheduler(SchedulerOptions options, const Clock& clock, std::uint64_t seed);

  // Takes over persisted state (containers not running any more are dropped
  // by the next set_running).
  void restore(const std::vector<store::ScheduleState>& states);
  // The engine's running containers now: new ones are added (never
  // scanned), the rest forgotten. Returns the forgotten IDs.
  std::vector<std::string> set_running(const std::vector<std::string>& ids);
  // A start or exec event: due at once (subject to min_interval).
  void on_event(const std::string& id);

  // Up to `concurrency() - in flight` due containers, best first; they are
  // in flight until finished().
  std::vector<std::string> take_due();
  void finished(const std::string& id, bool ok, std::chrono::milliseconds took);

  unsigned concurrency() const { return concurrency_; }
  std::size_t in_flight() const { return in_flight_; }
  // The earliest time something becomes due (nullopt: nothing tracked).
  std::optional<std::int64_t> next_due_ms() const;
  std::optional<store::ScheduleState> state(const std::string& id) const;
  std::vector<store::ScheduleState> states() const;

 private:
  struct Entry {
    store::ScheduleState state;
    std::int64_t next_due_ms = 0;
    bool in_flight = false;
    std::int64_t started_ms = 0;  // of the scan in flight
  };
  std::int64_t due_time(const Entry& e) const;
  int priority(const Entry& e) const;
  std::int64_t jittered_interval();

  SchedulerOptions options_;
  const Clock& clock_;
  std::mt19937_64 rng_;
  std::map<std::string, Entry> entries_;
  unsigned concurrency_;
  std::size_t in_flight_ = 0;
};

}  // namespace hashsieve::runtime
