#include "hashsieve/runtime/scheduler.h"

#include <gtest/gtest.h>

namespace hashsieve::runtime {
namespace {

using std::chrono::hours;
using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::seconds;

constexpr std::int64_t kStart = 1'800'000'000'000;

SchedulerOptions options(unsigned concurrency = 2) {
  SchedulerOptions o;
  o.sweep_interval = hours(1);
  o.jitter = 0.1;
  o.min_interval = seconds(30);
  o.max_concurrency = concurrency;
  o.slow_scan = seconds(20);
  return o;
}

void finish_all(Scheduler& s, const std::vector<std::string>& ids, bool ok = true, milliseconds took = milliseconds(10)) {
  for (const auto& id : ids) s.finished(id, ok, took);
}

TEST(Scheduler, NeverScannedFirstThenEventsThenOverdue) {
  ManualClock clock(kStart);
  Scheduler s(options(1), clock, 1);
  s.set_running({"a", "b"});
  // Nothing scanned yet: both due, one at a time (concurrency 1).
  auto due = s.take_due();
  ASSERT_EQ(due, std::vector<std::string>{"a"});
  EXPECT_TRUE(s.take_due().empty());
  s.finished("a", true, milliseconds(5));
  EXPECT_EQ(s.take_due(), std::vector<std::string>{"b"});
  s.finished("b", true, milliseconds(5));
  EXPECT_TRUE(s.take_due().empty());
  // A new container outranks an event, which outranks nothing due.
  clock.advance(minutes(1));
  s.on_event("b");
  s.set_running({"a", "b", "c"});
  EXPECT_EQ(s.take_due(), std::vector<std::string>{"c"});
  s.finished("c", true, milliseconds(5));
  EXPECT_EQ(s.take_due(), std::vector<std::string>{"b"});
  s.finished("b", true, milliseconds(5));
  EXPECT_TRUE(s.take_due().empty());
}

TEST(Scheduler, AnEventDuringAScanBringsAnotherScan) {
  ManualClock clock(kStart);
  Scheduler s(options(), clock, 3);
  s.set_running({"a"});
  finish_all(s, s.take_due());
  clock.advance(hours(2));
  ASSERT_EQ(s.take_due(), std::vector<std::string>{"a"});  // the sweep's scan starts
  clock.advance(seconds(5));
  s.on_event("a");  // e.g. an exec that writes after the scan read the container
  clock.advance(seconds(5));
  s.finished("a", true, seconds(10));
  EXPECT_EQ(s.state("a")->last_scan_ms, kStart + milliseconds(hours(2)).count());  // the scan's start
  EXPECT_TRUE(s.take_due().empty());  // not within min_interval of that scan
  clock.advance(seconds(20));
  EXPECT_EQ(s.take_due(), std::vector<std::string>{"a"});
  s.finished("a", true, milliseconds(5));
  clock.advance(minutes(5));
  EXPECT_TRUE(s.take_due().empty());  // the event is consumed now
}

TEST(Scheduler, EventsRespectTheMinimumInterval) {
  ManualClock clock(kStart);
  Scheduler s(options(), clock, 2);
  s.set_running({"a"});
  finish_all(s, s.take_due());
  clock.advance(seconds(10));
  s.on_event("a");
  EXPECT_TRUE(s.take_due().empty());
  ASSERT_TRUE(s.next_due_ms());
  EXPECT_EQ(*s.next_due_ms(), kStart + 30'000);
  clock.advance(seconds(20));
  EXPECT_EQ(s.take_due(), std::vector<std::string>{"a"});
}

TEST(Scheduler, EveryContainerOncePerIntervalWithJitter) {
  ManualClock clock(kStart);
  Scheduler s(options(100), clock, 3);
  std::vector<std::string> ids;
  for (int i = 0; i < 50; ++i) ids.push_back(std::string("c").append(std::to_string(i)));
  s.set_running(ids);
  finish_all(s, s.take_due());
  // Nothing before 0.9 h; everything by 1.1 h; not all at once.
  clock.advance(minutes(53));
  EXPECT_TRUE(s.take_due().empty());
  std::size_t seen = 0, steps_with_scans = 0;
  for (int m = 0; m < 14; ++m) {
    clock.advance(minutes(1));
    auto due = s.take_due();
    if (!due.empty()) ++steps_with_scans;
    seen += due.size();
    finish_all(s, due);
  }
  EXPECT_EQ(seen, 50u);
  EXPECT_GT(steps_with_scans, 3u);
}

TEST(Scheduler, FailuresBackOffAndBackPressureHalvesConcurrency) {
  ManualClock clock(kStart);
  Scheduler s(options(4), clock, 4);
  s.set_running({"a", "b", "c", "d"});
  auto due = s.take_due();
  ASSERT_EQ(due.size(), 4u);
  s.finished("a", false, seconds(30));  // slow and failed
  EXPECT_EQ(s.concurrency(), 2u);
  s.finished("b", true, seconds(25));
  EXPECT_EQ(s.concurrency(), 1u);
  s.finished("c", true, milliseconds(10));
  EXPECT_EQ(s.concurrency(), 2u);
  s.finished("d", true, milliseconds(10));
  EXPECT_EQ(s.concurrency(), 3u);
  EXPECT_EQ(s.state("a")->failures, 1u);
  clock.advance(seconds(29));
  EXPECT_TRUE(s.take_due().empty());
  clock.advance(seconds(1));
  EXPECT_EQ(s.take_due(), std::vector<std::string>{"a"});
  s.finished("a", false, milliseconds(10));
  EXPECT_EQ(s.state("a")->failures, 2u);
  clock.advance(seconds(59));
  EXPECT_TRUE(s.take_due().empty());  // second failure: 60 s
  clock.advance(seconds(1));
  EXPECT_EQ(s.take_due(), std::vector<std::string>{"a"});
  s.finished("a", true, milliseconds(10));
  EXPECT_EQ(s.state("a")->failures, 0u);
}

TEST(Scheduler, RestoredStateCarriesOn) {
  ManualClock clock(kStart);
  Scheduler first(options(), clock, 5);
  first.set_running({"a", "b"});
  finish_all(first, first.take_due());
  clock.advance(seconds(40));
  first.on_event("b");
  const auto saved = first.states();

  // A new process: the containers scanned a moment ago are not rescanned,
  // the pending event is kept, a new container comes first.
  Scheduler second(options(), clock, 6);
  second.restore(saved);
  second.set_running({"a", "b", "n"});
  EXPECT_EQ(second.take_due(), (std::vector<std::string>{"n", "b"}));
  EXPECT_FALSE(second.state("gone"));
  // Containers in flight are kept until they finish, even when no longer listed.
  second.set_running({"a"});
  EXPECT_TRUE(second.state("n"));
  EXPECT_EQ(second.in_flight(), 2u);
}

TEST(Scheduler, ForgetsStoppedContainers) {
  ManualClock clock(kStart);
  Scheduler s(options(), clock, 7);
  s.set_running({"a", "b"});
  finish_all(s, s.take_due());
  auto gone = s.set_running({"b"});
  EXPECT_EQ(gone, std::vector<std::string>{"a"});
  EXPECT_FALSE(s.state("a"));
  EXPECT_TRUE(s.state("b"));
}

}  // namespace
}  // namespace hashsieve::runtime
