// bridge-loadtest's parts: the log-linear histogram's accuracy, and the scenario files shipped in
// loadtest/scenarios (each must load), and the errors a bad one gets.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>

#include "bridge/core/config_map.hpp"
#include "histogram.hpp"
#include "scenario.hpp"

namespace bridge::loadtest {
namespace {

TEST(LatencyHistogram, ExactBelow128AndWithin1Point6PercentAbove) {
  LatencyHistogram h;
  for (std::uint64_t v = 0; v < 128; ++v) h.record(v);
  EXPECT_EQ(h.percentile(50), 63u);
  EXPECT_EQ(h.percentile(100), 127u);
  std::mt19937_64 rng(5);
  std::vector<std::uint64_t> values;
  LatencyHistogram wide;
  for (int i = 0; i < 100000; ++i) {
    const std::uint64_t v = rng() % 10'000'000;  // up to 10 s in us
    values.push_back(v);
    wide.record(v);
  }
  std::sort(values.begin(), values.end());
  for (double p : {50.0, 90.0, 99.0, 99.9}) {
    const auto exact = values[static_cast<std::size_t>(std::ceil(p / 100 * values.size())) - 1];
    const auto approx = wide.percentile(p);
    EXPECT_GE(approx, exact) << p;  // the bucket's upper edge: never below the truth
    EXPECT_LE(static_cast<double>(approx), static_cast<double>(exact) * (1 + 1.0 / 64) + 1) << p;
  }
  EXPECT_EQ(wide.max(), values.back());
  EXPECT_EQ(wide.count(), values.size());
}

TEST(LatencyHistogram, MergeAddsCountsAndKeepsTheMax) {
  LatencyHistogram a, b;
  for (int i = 0; i < 10; ++i) a.record(1000);
  b.record(5'000'000);
  a.merge(b);
  EXPECT_EQ(a.count(), 11u);
  EXPECT_EQ(a.max(), 5'000'000u);
  EXPECT_LE(a.percentile(50), 1000u * 65 / 64);
  EXPECT_EQ(a.percentile(100), 5'000'000u);
}

TEST(Scenario, EveryShippedScenarioLoads) {
  int loaded = 0;
  for (const auto& entry : std::filesystem::directory_iterator(BRIDGE_SOURCE_DIR "/loadtest/scenarios")) {
    const auto name = entry.path().filename().string();
    // Tenants files for the broker, not scenarios:
    if (entry.path().extension() != ".yaml" || name == "fairness-tenants.yaml" || name == "abuse-tenants.yaml")
      continue;
    Scenario s = load_scenario(entry.path().string());
    EXPECT_FALSE(s.streams.empty()) << name;
    EXPECT_GT(s.duration_s, 0) << name;
    ++loaded;
  }
  EXPECT_GE(loaded, 4);
}

TEST(Scenario, ABadScenarioIsRefusedNamingTheKey) {
  const auto path = std::filesystem::temp_directory_path() / "bridge-bad-scenario.yaml";
  std::ofstream(path) << "streams:\n  s:\n    kernel: vector_add\n    mode: sideways\n";
  try {
    load_scenario(path.string());
    FAIL() << "a bad mode was accepted";
  } catch (const core::ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("mode"), std::string::npos) << e.what();
  }
  std::ofstream(path) << "streams:\n  s:\n    kernel: vector_add\n    concurency: 3\n";
  EXPECT_THROW(load_scenario(path.string()), core::ConfigError);  // misspelt key
  std::filesystem::remove(path);
  EXPECT_EQ(parse_stream("kernel=sleep,param.ms=5,mode=open,rate=50").rate, 50);
  EXPECT_THROW(parse_stream("kernel=sleep,rate=fast"), core::ConfigError);
}

}  // namespace
}  // namespace bridge::loadtest
