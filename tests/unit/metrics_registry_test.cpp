// metrics::Registry: the Prometheus text format it renders.
#include <gtest/gtest.h>

#include "bridge/metrics/metrics.hpp"

namespace bridge::testing {
namespace {

TEST(MetricsRegistry, TheTextFormatEscapesLabelsAndCumulatesBuckets) {
  metrics::Registry r;
  r.describe("x_seconds", metrics::Registry::Type::kHistogram, "help", {0.1, 1});
  r.observe("x_seconds", {{"name", "a\"b\\c"}}, 0.05);
  r.observe("x_seconds", {{"name", "a\"b\\c"}}, 0.5);
  r.observe("x_seconds", {{"name", "a\"b\\c"}}, 5);
  const std::string text = r.render();
  EXPECT_NE(text.find(R"(x_seconds_bucket{name="a\"b\\c",le="0.10000000000000001"} 1)"), std::string::npos) << text;
  EXPECT_NE(text.find(R"(x_seconds_bucket{name="a\"b\\c",le="1"} 2)"), std::string::npos) << text;
  EXPECT_NE(text.find(R"(x_seconds_bucket{name="a\"b\\c",le="+Inf"} 3)"), std::string::npos) << text;
  EXPECT_NE(text.find(R"(x_seconds_count{name="a\"b\\c"} 3)"), std::string::npos) << text;
}

TEST(MetricsRegistry, CountersGaugesAndRemovalByLabel) {
  metrics::Registry r;
  r.describe("jobs_total", metrics::Registry::Type::kCounter, "Jobs.");
  r.add("jobs_total", {{"worker", "a"}});
  r.add("jobs_total", {{"worker", "a"}}, 2);
  r.add("jobs_total", {{"worker", "b"}});
  EXPECT_EQ(r.value("jobs_total", {{"worker", "a"}}), 3);
  r.set("up", {}, 1);
  EXPECT_NE(r.render().find("\nup 1\n"), std::string::npos) << r.render();
  r.remove("jobs_total", "worker", "a");
  EXPECT_EQ(r.value("jobs_total", {{"worker", "a"}}), 0);
  EXPECT_EQ(r.value("jobs_total", {{"worker", "b"}}), 1);
  EXPECT_NE(r.render().find("# HELP jobs_total Jobs.\n# TYPE jobs_total counter\n"), std::string::npos);
}

TEST(MetricsRegistry, AHandleAddsToTheSeriesItNamesAndKeepsItFromRemoval) {
  metrics::Registry r;
  r.describe("wait_seconds", metrics::Registry::Type::kHistogram, "Wait.", {0.1, 1});
  metrics::Registry::Handle empty;
  EXPECT_FALSE(empty);
  auto jobs = r.handle("jobs_total", {{"worker", "a"}, {"status", "OK"}}, metrics::Registry::Type::kCounter);
  ASSERT_TRUE(jobs);
  jobs.add();
  jobs.add(2);
  r.add("jobs_total", {{"worker", "a"}, {"status", "OK"}});  // the same series, by its labels
  EXPECT_EQ(r.value("jobs_total", {{"worker", "a"}, {"status", "OK"}}), 4);
  auto wait = r.handle("wait_seconds", {{"tenant", "t"}}, metrics::Registry::Type::kHistogram);
  wait.observe(0.05);
  wait.observe(5);
  const std::string text = r.render();
  EXPECT_NE(text.find(R"(wait_seconds_bucket{tenant="t",le="1"} 1)"), std::string::npos) << text;
  EXPECT_NE(text.find(R"(wait_seconds_count{tenant="t"} 2)"), std::string::npos) << text;
  // remove() leaves a held series (the handle would point at freed memory), drops the others.
  r.add("jobs_total", {{"worker", "a"}, {"status", "FAILED"}});
  r.remove("jobs_total", "worker", "a");
  EXPECT_EQ(r.value("jobs_total", {{"worker", "a"}, {"status", "FAILED"}}), 0);
  jobs.add();
  EXPECT_EQ(r.value("jobs_total", {{"worker", "a"}, {"status", "OK"}}), 5);
}

}  // namespace
}  // namespace bridge::testing
