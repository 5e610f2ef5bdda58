// Redis losing the fleet's data is detected and said, never silent: actor calls get DATA_LOSS
// naming the actor and the version lost, quotas are rebuilt, and a reset lets the actor start again.
#include <gtest/gtest.h>

#include "bridge/actor.hpp"
#include "fleet.hpp"

namespace bridge::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

Tensor filled(float value) {
  Tensor t = Tensor::zeros(DType::kF32, {4});
  for (float& v : t.mutable_values<float>()) v = value;
  return t;
}

// Three acknowledged versions of a counter actor.
void count_to_three(Actor& counter, Fleet& fleet) {
  ASSERT_TRUE(counter.put("sum", filled(1)).get().ok()) << fleet.logs();
  for (int i = 0; i < 2; ++i) {
    JobResult r = counter.call({.kernel = "vector_add", .args = {Resident{"sum"}, filled(1)}, .keep = {"sum"}}).get();
    ASSERT_TRUE(r.ok()) << r.status.to_string() << fleet.logs();
  }
  ASSERT_EQ(fleet.redis().command({"HGET", "bridge:actor:default/counter", "version"}), "3");
}

bool logged(Fleet& fleet, const std::string& text) {
  return eventually([&] { return fleet.broker().log().find(text) != std::string::npos; }, seconds(5));
}

TEST(RedisDataLoss, AFlushedRedisIsFoundAndTheActorsCallsGetDataLossUntilItIsReset) {
  Fleet fleet({.workers = 1});
  Client client(fleet.client_options());
  Actor counter(client, "", "counter");
  count_to_three(counter, fleet);
  const std::string epoch = fleet.redis().command({"GET", "bridge:epoch"});
  ASSERT_EQ(epoch.size(), 32u) << "the broker writes the fleet's epoch: " << epoch;

  fleet.redis().command({"FLUSHALL"});
  ASSERT_TRUE(logged(fleet, "lost the fleet's data")) << fleet.logs();
  EXPECT_NE(fleet.redis().command({"GET", "bridge:epoch"}), epoch);
  EXPECT_EQ(fleet.redis().command({"HGET", "bridge:quota:default", "max_inflight_jobs"}), "1000")
      << "the tenants' quotas are published again";
  EXPECT_EQ(fleet.redis().command({"HGET", "bridge:actor:default/counter", "lost"}), "3")
      << "the broker marked the actor it served";

  // The call would have run on the worker's activation; it is refused instead, naming what was lost.
  JobResult r = counter.call({.kernel = "vector_add", .args = {Resident{"sum"}, filled(1)}, .keep = {"sum"}}).get();
  EXPECT_EQ(r.status.code(), StatusCode::kDataLoss) << r.status.to_string();
  EXPECT_NE(r.status.message().find("actor default/counter lost its state: version 3 was acknowledged"),
            std::string::npos)
      << r.status.message();
  EXPECT_NE(r.status.message().find("bridgectl actor reset default counter"), std::string::npos) << r.status.message();

  // A client that never saw the actor is refused too: the mark is in Redis, not in a client.
  Client stranger(fleet.client_options());
  Actor same(stranger, "", "counter");
  EXPECT_EQ(same.get("sum").get().status.code(), StatusCode::kDataLoss);
  ActorInfo info;
  ASSERT_TRUE(same.info(info).is_ok());
  EXPECT_EQ(info.lost_version, 3u);

  // The tenant acknowledges the loss: the actor starts again, empty, at a version past the lost one.
  ASSERT_TRUE(counter.reset(info).is_ok());
  EXPECT_EQ(info.version, 4u);
  EXPECT_EQ(info.lost_version, 0u);
  EXPECT_TRUE(info.resident.empty());
  EXPECT_EQ(counter.get("sum").get().status.code(), StatusCode::kInvalidArgument) << "the tensor is gone";
  JobResult again = counter.put("sum", filled(7)).get();
  ASSERT_TRUE(again.ok()) << again.status.to_string() << fleet.logs();
  EXPECT_EQ(again.actor_version, 5u);
  JobResult sum = same.get("sum").get();
  ASSERT_TRUE(sum.ok()) << sum.status.to_string();
  EXPECT_FLOAT_EQ(sum.outputs[0].values<float>()[0], 7.0f);
}

// Redis restarts without persistence while the broker is also restarted: no broker remembers the
// actor, but its client does, and says so with each call.
TEST(RedisDataLoss, ARedisAndBrokerRestartedTogetherAreCaughtByTheVersionTheClientSaw) {
  Fleet fleet({.workers = 1});
  Client client(fleet.client_options());
  Actor counter(client, "", "counter");
  count_to_three(counter, fleet);

  fleet.redis().restart();
  fleet.restart_broker();
  ASSERT_TRUE(fleet.wait_for_workers(1)) << fleet.logs();
  JobResult r;
  // The first call after the restart may meet a broker still connecting to Redis (UNAVAILABLE).
  ASSERT_TRUE(eventually(
      [&] {
        r = counter.call({.kernel = "vector_add", .args = {Resident{"sum"}, filled(1)}, .keep = {"sum"}}).get();
        return r.status.code() != StatusCode::kUnavailable;
      },
      seconds(10)));
  EXPECT_EQ(r.status.code(), StatusCode::kDataLoss) << r.status.to_string() << fleet.logs();
  EXPECT_NE(r.status.message().find("version 3 was acknowledged, but Redis"), std::string::npos) << r.status.message();
  // The mark is written as the call is answered, not before: it may land a moment later.
  EXPECT_TRUE(eventually(
      [&] {
        return fleet.redis().command({"HGET", "bridge:actor:default/counter", "lost"}) == "3";
      },
      seconds(5)));
  EXPECT_EQ(fleet.redis().command({"HGET", "bridge:actor:default/counter", "version"}), "<nil>")
      << "the empty state was not rolled forward";
  // A mark with no record under it expires (a day): marks a client can name at will do not pile up.
  const long long ttl = std::stoll(fleet.redis().command({"PTTL", "bridge:actor:default/counter"}));
  EXPECT_GT(ttl, 0);
  EXPECT_LE(ttl, 24LL * 3600 * 1000);
}

// Redis restarts without persistence under a running broker: the broker reconnects, finds the
// epoch gone, and the actor it had active (whose copy on the worker Redis no longer backs) is lost.
TEST(RedisDataLoss, ARedisRestartedEmptyUnderARunningBrokerIsFoundOnReconnect) {
  Fleet fleet({.workers = 1});
  Client client(fleet.client_options());
  Actor counter(client, "", "counter");
  count_to_three(counter, fleet);
  fleet.redis().restart();
  ASSERT_TRUE(logged(fleet, "lost the fleet's data")) << fleet.logs();
  Client stranger(fleet.client_options());  // no version seen: the broker's mark alone refuses it
  JobResult r = Actor(stranger, "", "counter").get("sum").get();
  EXPECT_EQ(r.status.code(), StatusCode::kDataLoss) << r.status.to_string() << fleet.logs();
  EXPECT_NE(r.status.message().find("version 3 was acknowledged"), std::string::npos) << r.status.message();
}

// A reset while the actor's calls are in flight would drop the state they run on: refused.
TEST(RedisDataLoss, AResetWhileTheActorHasCallsInFlightIsAborted) {
  Fleet fleet({.workers = 1});
  Client client(fleet.client_options());
  Actor slow(client, "", "slow");
  ASSERT_TRUE(slow.put("x", filled(1)).get().ok());
  auto running = slow.call({.kernel = "sleep", .params = {{"ms", 1500}}});
  ASSERT_TRUE(fleet.wait_for_inflight(1)) << fleet.logs();
  ActorInfo info;
  const Status refused = slow.reset(info);
  EXPECT_EQ(refused.code(), StatusCode::kAborted) << refused.to_string();
  EXPECT_NE(refused.message().find("has 1 calls in flight"), std::string::npos) << refused.message();
  EXPECT_TRUE(running.get().ok());
  ASSERT_TRUE(slow.reset(info).is_ok());
  EXPECT_EQ(info.version, 2u);
  EXPECT_EQ(fleet.redis().command({"GET", "bridge:resident:default"}), "0") << "its bytes left the tenant's count";
}

}  // namespace
}  // namespace bridge::testing
