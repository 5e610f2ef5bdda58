// The GPU circuit breaker: opens after repeated failures, cools down, allows one trial.
#include <gtest/gtest.h>

#include "bridge/worker/circuit_breaker.hpp"

namespace bridge::worker {
namespace {

using namespace std::chrono_literals;
using Clock = CircuitBreaker::Clock;

TEST(CircuitBreaker, OpensAfterFailuresWithinTheWindow) {
  CircuitBreaker b({3, 1000ms, 5000ms});
  const auto t = Clock::now();
  EXPECT_FALSE(b.record_failure(t));
  EXPECT_FALSE(b.record_failure(t + 10ms));
  EXPECT_TRUE(b.allow(t + 20ms));
  EXPECT_TRUE(b.record_failure(t + 20ms));  // the third opens it
  EXPECT_FALSE(b.allow(t + 30ms));
  EXPECT_TRUE(b.is_open(t + 30ms));
  EXPECT_NE(b.describe(t + 30ms).find("circuit breaker"), std::string::npos);
}

TEST(CircuitBreaker, FailuresSpreadBeyondTheWindowDoNotOpenIt) {
  CircuitBreaker b({3, 1000ms, 5000ms});
  const auto t = Clock::now();
  b.record_failure(t);
  b.record_failure(t + 500ms);
  EXPECT_FALSE(b.record_failure(t + 1600ms));  // the window restarted
  EXPECT_TRUE(b.allow(t + 1700ms));
}

TEST(CircuitBreaker, AfterCooldownOneTrialDecides) {
  CircuitBreaker b({1, 1000ms, 5000ms});
  const auto t = Clock::now();
  EXPECT_TRUE(b.record_failure(t));
  EXPECT_FALSE(b.allow(t + 4s));
  EXPECT_TRUE(b.allow(t + 6s));   // half-open: one trial
  EXPECT_FALSE(b.allow(t + 6s));  // and only one
  b.record_failure(t + 6s);       // trial failed: a new cooldown
  EXPECT_FALSE(b.allow(t + 10s));
  EXPECT_TRUE(b.allow(t + 12s));
  b.record_success();
  EXPECT_TRUE(b.allow(t + 12s));
  EXPECT_FALSE(b.is_open(t + 12s));
}

TEST(CircuitBreaker, SuccessResetsTheCount) {
  CircuitBreaker b({2, 1000ms, 5000ms});
  const auto t = Clock::now();
  b.record_failure(t);
  b.record_success();
  EXPECT_FALSE(b.record_failure(t + 1ms));
}

}  // namespace
}  // namespace bridge::worker
