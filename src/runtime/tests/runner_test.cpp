#include "hashsieve/runtime/runner.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "fake_engine.h"
#include "hashsieve/runtime/report.h"
#include "scan_fixture.h"

namespace hashsieve::runtime {
namespace {

using scan::Verdict;
using scan::testing::Contents;
using scan::testing::TempDir;
using testing::Bytes;
using testing::FakeEngine;

constexpr std::int64_t kStart = 1'800'000'000'000;

class RunnerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    scan::testing::build_sets(dir_.path(), contents_);
    sets_ = scan::testing::load_sets(dir_.path(), {"distro", "bad"});
    auto s = store::open_sqlite_container_store(dir_.path() + "/db");
    ASSERT_TRUE(s.ok());
    results_ = std::move(s).value();
    auto i = store::open_sqlite_store(dir_.path() + "/db");
    ASSERT_TRUE(i.ok());
    images_ = std::move(i).value();
    for (int n = 0; n < 6; ++n) {
      std::string id = "c";
      id += std::to_string(n);
      engine_.add_container(id, "box" + id);
      engine_.add_file(id, "/tmp/note", ChangeKind::added, Bytes(100, static_cast<std::uint8_t>(n)));
    }
    engine_.add_file("c3", "/tmp/evil", ChangeKind::added, contents_.evil);
  }
  SchedulerOptions sched() {
    SchedulerOptions o;
    o.max_concurrency = 2;
    return o;
  }
  TempDir dir_;
  Contents contents_;
  std::vector<refset::LoadedRefset> sets_;
  FakeEngine engine_;
  std::unique_ptr<store::ContainerStore> results_;
  std::unique_ptr<store::Store> images_;
};

TEST_F(RunnerTest, OneTickScansEveryContainerAndStoresTheResults) {
  store::ScanRecord image;
  image.reference = "busybox:test";
  image.verdict = "unknown";
  image.summary_json = "{}";
  auto image_id = images_->put_scan_result(image);
  ASSERT_TRUE(image_id.ok());

  ManualClock clock(kStart);
  Scheduler scheduler(sched(), clock, 1);
  DriftScanner drift(sets_, nullptr, {}, DriftOptions{});
  Runner runner(engine_, drift, scheduler, clock, results_.get(), images_.get());
  auto tick = runner.tick();
  EXPECT_TRUE(tick.errors.empty());
  ASSERT_EQ(tick.scans.size(), 6u);
  auto list = results_->list_container_results(100);
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 6u);
  auto c3 = results_->get_container_result("c3");
  ASSERT_TRUE(c3.ok());
  ASSERT_TRUE(c3->has_value());
  EXPECT_EQ((*c3)->verdict, "malicious");
  EXPECT_EQ((*c3)->drifted_files, 2u);
  EXPECT_EQ((*c3)->image_scan_id, *image_id);
  auto j = nlohmann::json::parse((*c3)->result_json);
  EXPECT_EQ(j["files"][0]["path"], "/tmp/evil");
  EXPECT_EQ(j["files"][0]["verdict"], "malicious");
  EXPECT_EQ(j["image_scan"]["verdict"], "unknown");
  // Nothing is due a moment later.
  clock.advance(std::chrono::seconds(5));
  auto later = runner.tick();
  for (const auto& s : later.scans) ADD_FAILURE() << "rescanned " << s.container.id << " errors " << s.errors.size() << (s.errors.empty() ? "" : s.errors[0].message);
  auto schedule = results_->list_schedule();
  ASSERT_TRUE(schedule.ok());
  EXPECT_EQ(schedule->size(), 6u);
}

TEST_F(RunnerTest, EngineFailingMidSweepIsRecordedAndCaughtUp) {
  ManualClock clock(kStart);
  Scheduler scheduler(sched(), clock, 2);
  DriftScanner drift(sets_, nullptr, {}, DriftOptions{});
  Runner runner(engine_, drift, scheduler, clock, results_.get(), images_.get());
  // A complete first sweep, then the engine dies after three files of the next.
  ASSERT_EQ(runner.tick().scans.size(), 6u);
  clock.advance(std::chrono::hours(2));
  engine_.fail_after_archives = engine_.archives + 3;
  auto first = runner.tick();
  std::size_t failed = 0;
  for (const auto& s : first.scans) failed += s.errors.empty() ? 0 : 1;
  EXPECT_GT(failed, 0u);
  EXPECT_EQ(first.scans.size(), 6u);
  // While it is down, a tick records the listing error and goes on.
  auto down = runner.tick();
  ASSERT_EQ(down.errors.size(), 1u);
  EXPECT_EQ(down.errors[0].code, ErrorCode::unavailable);
  // Back up: failed containers are retried after the back-off, and only they.
  engine_.down = false;
  engine_.fail_after_archives = -1;
  clock.advance(std::chrono::seconds(31));
  auto again = runner.tick();
  EXPECT_EQ(again.scans.size(), failed);
  for (const auto& s : again.scans) EXPECT_TRUE(s.errors.empty()) << s.container.id;
  auto c3 = results_->get_container_result("c3");
  ASSERT_TRUE(c3.ok() && c3->has_value());
  EXPECT_EQ((*c3)->verdict, "malicious");
  EXPECT_EQ((*c3)->errors, 0u);
}

TEST_F(RunnerTest, ACutShortScanKeepsTheCompleteEarlierResult) {
  ManualClock clock(kStart);
  Scheduler scheduler(sched(), clock, 6);
  DriftScanner drift(sets_, nullptr, {}, DriftOptions{});
  Runner runner(engine_, drift, scheduler, clock, results_.get(), nullptr);
  ASSERT_EQ(runner.tick().scans.size(), 6u);
  clock.advance(std::chrono::hours(2));
  engine_.fail_after_archives = engine_.archives;  // down before the first file
  auto cut = runner.tick();
  ASSERT_FALSE(cut.scans.empty());
  for (const auto& s : cut.scans) EXPECT_FALSE(s.errors.empty());
  auto c3 = results_->get_container_result("c3");
  ASSERT_TRUE(c3.ok() && c3->has_value());
  EXPECT_EQ((*c3)->verdict, "malicious");
  auto schedule = results_->list_schedule();
  ASSERT_TRUE(schedule.ok());
  std::size_t failing = 0;
  for (const auto& st : *schedule) failing += st.failures > 0 ? 1 : 0;
  EXPECT_EQ(failing, cut.scans.size());
}

TEST_F(RunnerTest, ARestartedRunnerCarriesOnFromTheStore) {
  ManualClock clock(kStart);
  {
    Scheduler scheduler(sched(), clock, 3);
    DriftScanner drift(sets_, nullptr, {}, DriftOptions{});
    Runner runner(engine_, drift, scheduler, clock, results_.get(), nullptr);
    ASSERT_TRUE(runner.restore().ok());
    EXPECT_EQ(runner.tick().scans.size(), 6u);
  }
  clock.advance(std::chrono::minutes(5));
  engine_.add_container("c9", "late");
  Scheduler scheduler(sched(), clock, 4);
  DriftScanner drift(sets_, nullptr, {}, DriftOptions{});
  Runner runner(engine_, drift, scheduler, clock, results_.get(), nullptr);
  ASSERT_TRUE(runner.restore().ok());
  auto tick = runner.tick();
  ASSERT_EQ(tick.scans.size(), 1u);
  EXPECT_EQ(tick.scans[0].container.id, "c9");
}

TEST_F(RunnerTest, ReportsPrintEveryContainer) {
  ManualClock clock(kStart);
  Scheduler scheduler(sched(), clock, 5);
  DriftScanner drift(sets_, nullptr, {}, DriftOptions{});
  Runner runner(engine_, drift, scheduler, clock, nullptr, nullptr);
  auto tick = runner.tick();
  auto j = nlohmann::json::parse(write_runtime_json(tick.scans, "1.0", "2026-11-22T00:00:00Z"));
  EXPECT_EQ(j["containers"].size(), 6u);
  auto reports = to_image_reports(tick.scans);
  ASSERT_EQ(reports.size(), 6u);
  std::size_t malicious = 0;
  for (const auto& r : reports) malicious += r.summary.count(Verdict::malicious);
  EXPECT_EQ(malicious, 1u);
}

}  // namespace
}  // namespace hashsieve::runtime
