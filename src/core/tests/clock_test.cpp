#include "hashsieve/core/clock.h"

#include <gtest/gtest.h>

#include <chrono>

namespace hashsieve {
namespace {

TEST(ClockTest, FormatsUtcWithMilliseconds) {
  struct Case {
    std::int64_t ms;
    std::string want;
  };
  const std::vector<Case> cases = {
      {0, "1970-01-01T00:00:00.000Z"},
      {1'795'000'000'123, "2026-11-18T11:06:40.123Z"},
      {-1, "1969-12-31T23:59:59.999Z"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.ms);
    EXPECT_EQ(format_utc_ms(c.ms), c.want);
  }
}

TEST(ClockTest, ManualClockMovesOnlyWhenTold) {
  ManualClock clock(1'000);
  EXPECT_EQ(clock.now_ms(), 1'000);
  clock.advance_ms(250);
  EXPECT_EQ(clock.now_ms(), 1'250);
  clock.set_ms(5);
  EXPECT_EQ(clock.now_ms(), 5);
}

TEST(ClockTest, SystemClockIsTheWallClock) {
  const auto before = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  const auto now = system_clock().now_ms();
  EXPECT_GE(now, before);
  EXPECT_LT(now - before, 60'000);
}

}  // namespace
}  // namespace hashsieve
