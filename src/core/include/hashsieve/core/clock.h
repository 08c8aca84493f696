// Time as a seam. Queues, leases, retry delays and job timestamps read the
// time through a Clock so tests can move it by hand instead of sleeping.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

namespace hashsieve {

class Clock {
 public:
  virtual ~Clock() = default;
  // Milliseconds since the Unix epoch (wall clock: values are persisted and
  // compared across processes, so a monotonic clock would not do).
  virtual std::int64_t now_ms() const = 0;
};

// The process-wide real clock (std::chrono::system_clock).
Clock& system_clock();

// A clock that moves only when told to. Thread-safe.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(std::int64_t start_ms = 1'790'000'000'000) : now_(start_ms) {}
  std::int64_t now_ms() const override { return now_.load(); }
  void advance_ms(std::int64_t ms) { now_.fetch_add(ms); }
  void set_ms(std::int64_t ms) { now_.store(ms); }

 private:
  std::atomic<std::int64_t> now_;
};

// "2026-11-22T10:00:00.123Z" (UTC, millisecond precision).
std::string format_utc_ms(std::int64_t ms_since_epoch);

}  // namespace hashsieve
