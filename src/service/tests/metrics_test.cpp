#include "hashsieve/service/metrics.h"

#include <gtest/gtest.h>

namespace hashsieve::service {
namespace {

TEST(MetricsTest, RendersCountersGaugesAndHistograms) {
  MetricsRegistry m;
  m.counter("jobs_total", "jobs", {{"origin", "webhook"}}).add(3);
  m.counter("jobs_total", "jobs", {{"origin", "api"}}).add();
  m.gauge("depth", "queue depth").set(7);
  auto& h = m.histogram("dur_seconds", "durations", {0.1, 1});
  h.observe(0.05);
  h.observe(0.1);  // on the bound: counted in le="0.1"
  h.observe(0.5);
  h.observe(5);
  const std::string text = m.render();
  const std::vector<std::string> want = {
      "# HELP jobs_total jobs\n# TYPE jobs_total counter\n",
      "jobs_total{origin=\"api\"} 1\n",
      "jobs_total{origin=\"webhook\"} 3\n",
      "# TYPE depth gauge\ndepth 7\n",
      "# TYPE dur_seconds histogram\n",
      "dur_seconds_bucket{le=\"0.10000000000000001\"} 2\n",
      "dur_seconds_bucket{le=\"1\"} 3\n",
      "dur_seconds_bucket{le=\"+Inf\"} 4\n",
      "dur_seconds_sum 5.6500000000000004\n",
      "dur_seconds_count 4\n",
  };
  for (const auto& w : want) {
    SCOPED_TRACE(w);
    EXPECT_NE(text.find(w), std::string::npos) << text;
  }
}

TEST(MetricsTest, SameNameAndLabelsIsTheSameMetric) {
  MetricsRegistry m;
  m.counter("c", "h").add(2);
  m.counter("c", "h").add(3);
  EXPECT_EQ(m.counter("c", "h").value(), 5u);
}

TEST(MetricsTest, CollectorsRunAtRender) {
  MetricsRegistry m;
  int calls = 0;
  m.add_collector([&] { m.gauge("g", "h").set(++calls); });
  EXPECT_NE(m.render().find("g 1\n"), std::string::npos);
  EXPECT_NE(m.render().find("g 2\n"), std::string::npos);
}

TEST(MetricsTest, LabelValuesAreEscaped) {
  struct Case {
    std::string in, want;
  };
  for (const auto& c : std::vector<Case>{{"plain", "plain"}, {"a\"b", "a\\\"b"}, {"a\\b", "a\\\\b"}, {"a\nb", "a\\nb"}}) {
    SCOPED_TRACE(c.in);
    EXPECT_EQ(escape_label_value(c.in), c.want);
  }
}

}  // namespace
}  // namespace hashsieve::service
