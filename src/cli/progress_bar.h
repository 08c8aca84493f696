// A one-line progress display on stderr, drawn only when stderr is a terminal
// (so logs and pipes stay clean), at most ten times a second.
#pragma once

#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>

namespace hashsieve::cli {

class ProgressBar {
 public:
  explicit ProgressBar(std::string label) : label_(std::move(label)), enabled_(::isatty(STDERR_FILENO) == 1) {}
  ~ProgressBar() { finish(); }
  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;

  // `done`/`total` measure the fraction complete (bytes or rows); `rows`
  // is what the rate is shown in.
  void update(std::uint64_t rows, std::uint64_t done, std::optional<std::uint64_t> total) {
    if (!enabled_) return;
    const auto now = Clock::now();
    if (drawn_ && now - last_draw_ < std::chrono::milliseconds(100)) return;
    last_draw_ = now;
    drawn_ = true;
    const double seconds = std::chrono::duration<double>(now - start_).count();
    const double rate = seconds > 0 ? static_cast<double>(rows) / seconds : 0;
    std::string eta = "--";
    std::string percent;
    if (total && *total > 0 && done > 0) {
      const double fraction = static_cast<double>(done) / static_cast<double>(*total);
      const double remaining = seconds * (1 - fraction) / fraction;
      char buf[32];
      std::snprintf(buf, sizeof buf, "%dm%02ds", static_cast<int>(remaining) / 60, static_cast<int>(remaining) % 60);
      eta = buf;
      std::snprintf(buf, sizeof buf, " %3.0f%%", 100 * fraction);
      percent = buf;
    }
    std::fprintf(stderr, "\r%s%s  %llu rows  %.0f rows/s  ETA %s   ", label_.c_str(), percent.c_str(),
                 static_cast<unsigned long long>(rows), rate, eta.c_str());
    std::fflush(stderr);
  }

  void finish() {
    if (enabled_ && drawn_) std::fputc('\n', stderr);
    drawn_ = false;
    enabled_ = false;
  }

 private:
  using Clock = std::chrono::steady_clock;
  std::string label_;
  bool enabled_;
  bool drawn_ = false;
  Clock::time_point start_ = Clock::now();
  Clock::time_point last_draw_{};
};

}  // namespace hashsieve::cli
