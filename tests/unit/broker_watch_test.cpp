// BrokerWatch on its own: when a client pings its broker, and when it leaves it for the next one.
#include "bridge/core/broker_watch.hpp"

#include <gtest/gtest.h>

#include "bridge/core/config_map.hpp"

namespace bridge::core {
namespace {

using Action = BrokerWatch::Action;
using std::chrono::milliseconds;

TEST(BrokerList, IsSplitAtCommasAndTrimmedAndAnEmptyEntryIsAConfigError) {
  EXPECT_EQ(parse_broker_list("tcp://a:1"), (std::vector<std::string>{"tcp://a:1"}));
  EXPECT_EQ(parse_broker_list(" tcp://a:1 ,tcp://b:2"), (std::vector<std::string>{"tcp://a:1", "tcp://b:2"}));
  EXPECT_THROW(parse_broker_list(""), ConfigError);
  EXPECT_THROW(parse_broker_list("tcp://a:1,"), ConfigError);
  EXPECT_THROW(parse_broker_list("tcp://a:1,,tcp://b:2"), ConfigError);
}

TEST(BrokerWatch, StartsAtTheGivenBrokerAndMovesRoundTheList) {
  const auto t0 = BrokerWatch::Clock::now();
  BrokerWatch watch({"a", "b", "c"}, milliseconds(100), 4, t0);
  EXPECT_EQ(watch.current(), "b");
  EXPECT_EQ(watch.move(t0), "c");
  EXPECT_EQ(watch.move(t0), "a");
}

// Silent for two checks, with a Ping unanswered for one of them, while requests wait: it moves.
TEST(BrokerWatch, LeavesABrokerSilentForTwoChecksWhileRequestsWait) {
  const auto t0 = BrokerWatch::Clock::now();
  BrokerWatch watch({"a", "b"}, milliseconds(100), 0, t0);
  EXPECT_EQ(watch.due(t0, true), Action::kPing) << "asks at once, to learn who the broker is";
  watch.pinged(t0);
  watch.heard(t0 + milliseconds(5));
  watch.known(t0 + milliseconds(5));
  EXPECT_EQ(watch.due(t0 + milliseconds(50), true), Action::kNone) << "heard from lately";
  EXPECT_EQ(watch.due(t0 + milliseconds(110), true), Action::kPing) << "silent for a check: asked";
  watch.pinged(t0 + milliseconds(110));
  EXPECT_EQ(watch.due(t0 + milliseconds(180), true), Action::kNone);
  EXPECT_EQ(watch.due(t0 + milliseconds(210), false), Action::kNone) << "nothing waits: no move";
  EXPECT_EQ(watch.due(t0 + milliseconds(210), true), Action::kMove);
  EXPECT_EQ(watch.move(t0 + milliseconds(210)), "b");
  EXPECT_EQ(watch.due(t0 + milliseconds(210), true), Action::kPing) << "the next broker is asked at once";
}

// An answer in time keeps the client where it is; a quiet broker, asked after a long idle time,
// gets a check to answer before the client moves.
TEST(BrokerWatch, AnAnsweredPingOrAQuietBrokerKeepsTheClient) {
  const auto t0 = BrokerWatch::Clock::now();
  BrokerWatch watch({"a", "b"}, milliseconds(100), 0, t0);
  watch.pinged(t0);
  watch.heard(t0 + milliseconds(1));
  watch.known(t0 + milliseconds(1));
  // Idle for 10 s (nothing waits: nothing asked), then a job.
  const auto later = t0 + milliseconds(10000);
  EXPECT_EQ(watch.due(later, false), Action::kNone);
  EXPECT_EQ(watch.due(later, true), Action::kPing);
  watch.pinged(later);
  EXPECT_EQ(watch.due(later + milliseconds(50), true), Action::kNone) << "a quiet broker is not a dead one";
  watch.heard(later + milliseconds(60));
  watch.known(later + milliseconds(60));  // its Pong
  EXPECT_EQ(watch.due(later + milliseconds(150), true), Action::kNone);
  EXPECT_EQ(watch.due(later + milliseconds(170), true), Action::kPing);
  watch.pinged(later + milliseconds(170));
  watch.heard(later + milliseconds(200));
  watch.known(later + milliseconds(200));
  EXPECT_EQ(watch.due(later + milliseconds(275), true), Action::kNone) << "it answered: stays";
  EXPECT_EQ(watch.current(), "a");
}

// Heard from all the time, with work waiting, a broker is still asked who it is every few checks:
// a restarted one answers what reached it and knows nothing of what the old one lost.
TEST(BrokerWatch, ABusyBrokerIsAskedWhoItIsEveryFewChecksWhileWorkWaits) {
  const auto t0 = BrokerWatch::Clock::now();
  BrokerWatch watch({"a"}, milliseconds(100), 0, t0);
  watch.pinged(t0);
  watch.heard(t0 + milliseconds(1));
  watch.known(t0 + milliseconds(1));
  for (int ms = 110; ms < 500; ms += 50) {
    watch.heard(t0 + milliseconds(ms));  // results keep coming
    EXPECT_EQ(watch.due(t0 + milliseconds(ms), true), Action::kNone) << ms;
  }
  watch.heard(t0 + milliseconds(510));
  EXPECT_EQ(watch.due(t0 + milliseconds(510), true), Action::kPing) << "five checks without a Pong";
  EXPECT_EQ(watch.due(t0 + milliseconds(510), false), Action::kNone) << "nothing waits: nothing to lose";
}

TEST(BrokerWatch, OneBrokerOrNoChecksNeverMove) {
  const auto t0 = BrokerWatch::Clock::now();
  BrokerWatch one({"a"}, milliseconds(100), 0, t0);
  one.pinged(t0);
  EXPECT_EQ(one.due(t0 + milliseconds(1000), true), Action::kPing) << "asks again; nowhere to go";
  BrokerWatch off({"a", "b"}, milliseconds(0), 0, t0);
  EXPECT_EQ(off.due(t0 + milliseconds(1000), true), Action::kNone);
}

}  // namespace
}  // namespace bridge::core
