// ThrottledLog: one line per period for events a client causes at will, saying how many were held back.
#include <gtest/gtest.h>

#include "bridge/broker/throttled_log.hpp"

namespace bridge::broker {
namespace {

using std::chrono::milliseconds;

TEST(ThrottledLog, TheFirstInEachPeriodIsLoggedWithTheCountHeldBackBeforeIt) {
  ThrottledLog log(milliseconds(100));
  const auto t0 = ThrottledLog::Clock::now();
  std::uint64_t held = 99;
  EXPECT_TRUE(log.take(t0, held));
  EXPECT_EQ(held, 0u);
  for (int i = 1; i <= 5000; ++i) EXPECT_FALSE(log.take(t0 + milliseconds(i % 100), held));
  EXPECT_TRUE(log.take(t0 + milliseconds(100), held));
  EXPECT_EQ(held, 5000u);
  EXPECT_FALSE(log.take(t0 + milliseconds(150), held));
  EXPECT_TRUE(log.take(t0 + milliseconds(1000), held)) << "a quiet period later logs at once";
  EXPECT_EQ(held, 1u);
}

}  // namespace
}  // namespace bridge::broker
