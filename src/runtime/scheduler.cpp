#include "hashsieve/runtime/scheduler.h"

#include <algorithm>
#include <set>

namespace hashsieve::runtime {

std::int64_t SystemClock::now_ms() const {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Scheduler::Scheduler(SchedulerOptions options, const Clock& clock, std::uint64_t seed)
    : options_(options), clock_(clock), rng_(seed), concurrency_(std::max(1u, options.max_concurrency)) {
  options_.jitter = std::clamp(options_.jitter, 0.0, 0.5);
  options_.max_concurrency = concurrency_;
}

std::int64_t Scheduler::jittered_interval() {
  const double base = static_cast<double>(options_.sweep_interval.count());
  std::uniform_real_distribution<double> d(-options_.jitter, options_.jitter);
  return static_cast<std::int64_t>(base * (1.0 + d(rng_)));
}

void Scheduler::restore(const std::vector<store::ScheduleState>& states) {
  for (const auto& s : states) {
    Entry e;
    e.state = s;
    e.next_due_ms = s.last_scan_ms == 0 ? 0 : s.last_scan_ms + jittered_interval();
    entries_[s.container_id] = e;
  }
}

std::vector<std::string> Scheduler::set_running(const std::vector<std::string>& ids) {
  const std::set<std::string> running(ids.begin(), ids.end());
  std::vector<std::string> gone;
  for (auto it = entries_.begin(); it != entries_.end();) {
    if (!running.contains(it->first) && !it->second.in_flight) {
      gone.push_back(it->first);
      it = entries_.erase(it);
    } else {
      ++it;
    }
  }
  for (const auto& id : ids) {
    if (!entries_.contains(id)) entries_[id].state.container_id = id;
  }
  return gone;
}

void Scheduler::on_event(const std::string& id) {
  Entry& e = entries_[id];
  e.state.container_id = id;
  // An event while the container is being scanned may postdate what the
  // scan read (an exec event comes as the exec starts): it stays pending
  // past that scan, whose last_scan_ms will be its start.
  e.state.last_event_ms = std::max(clock_.now_ms(), (e.in_flight ? e.started_ms : e.state.last_scan_ms) + 1);
}

std::int64_t Scheduler::due_time(const Entry& e) const {
  const auto& s = e.state;
  if (s.last_scan_ms == 0) return 0;
  std::int64_t due = e.next_due_ms;
  if (s.last_event_ms > s.last_scan_ms) due = std::min(due, s.last_scan_ms + options_.min_interval.count());
  if (s.failures > 0) {
    const std::int64_t backoff = std::min<std::int64_t>(
        options_.sweep_interval.count(),
        options_.min_interval.count() << std::min<std::uint32_t>(s.failures - 1, 20));
    due = std::min(due, s.last_scan_ms + backoff);
  }
  return due;
}

int Scheduler::priority(const Entry& e) const {
  if (e.state.last_scan_ms == 0) return 0;
  if (e.state.last_event_ms > e.state.last_scan_ms) return 1;
  return 2;
}

std::vector<std::string> Scheduler::take_due() {
  const std::int64_t now = clock_.now_ms();
  std::vector<std::pair<std::pair<int, std::int64_t>, std::string>> due;
  for (const auto& [id, e] : entries_) {
    if (e.in_flight) continue;
    const std::int64_t t = due_time(e);
    if (t <= now) due.push_back({{priority(e), t}, id});
  }
  std::sort(due.begin(), due.end());
  std::vector<std::string> out;
  for (const auto& [key, id] : due) {
    if (in_flight_ >= concurrency_) break;
    entries_[id].in_flight = true;
    entries_[id].started_ms = now;
    ++in_flight_;
    out.push_back(id);
  }
  return out;
}

void Scheduler::finished(const std::string& id, bool ok, std::chrono::milliseconds took) {
  if (took > options_.slow_scan) {
    concurrency_ = std::max(1u, concurrency_ / 2);
  } else if (concurrency_ < options_.max_concurrency) {
    ++concurrency_;
  }
  auto it = entries_.find(id);
  if (it == entries_.end() || !it->second.in_flight) return;
  Entry& e = it->second;
  e.in_flight = false;
  --in_flight_;
  const std::int64_t now = clock_.now_ms();
  // The scan saw the container as it was when it started.
  e.state.last_scan_ms = e.started_ms;
  e.state.failures = ok ? 0 : e.state.failures + 1;
  e.next_due_ms = now + jittered_interval();
}

std::optional<std::int64_t> Scheduler::next_due_ms() const {
  std::optional<std::int64_t> best;
  for (const auto& [id, e] : entries_) {
    if (e.in_flight) continue;
    const std::int64_t t = due_time(e);
    if (!best || t < *best) best = t;
  }
  return best;
}

std::optional<store::ScheduleState> Scheduler::state(const std::string& id) const {
  auto it = entries_.find(id);
  if (it == entries_.end()) return std::nullopt;
  return it->second.state;
}

std::vector<store::ScheduleState> Scheduler::states() const {
  std::vector<store::ScheduleState> out;
  for (const auto& [id, e] : entries_) out.push_back(e.state);
  return out;
}

}  // namespace hashsieve::runtime
