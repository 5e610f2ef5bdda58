// Actors across real processes: turn order, write-through with versions, resident tensors,
// reactivation after a worker is killed mid-call, idle deactivation, bridgectl-visible state.
#include <gtest/gtest.h>

#include <cstring>

#include "bridge/actor.hpp"
#include "fleet.hpp"
#include "random_tensor.hpp"

namespace bridge::testing {
namespace {

Tensor scalar_vector(float value, std::int64_t n = 4) {
  Tensor t = Tensor::zeros(DType::kF32, {n});
  for (float& v : t.mutable_values<float>()) v = value;
  return t;
}

TEST(Actors, CallsRunInOrderAndEachKeptOutputIsWrittenThroughWithANewVersion) {
  Fleet fleet({.workers = 2, .slots = 4});
  Client client(fleet.client_options());
  Actor counter(client, "", "counter");
  ASSERT_TRUE(counter.put("sum", scalar_vector(0)).get().ok());
  // 50 calls sent at once, each sum = sum + i: only one order of turns gives these versions and,
  // since later calls read the sum the earlier ones kept, the final value checks every step ran.
  std::vector<std::future<JobResult>> calls;
  for (int i = 1; i <= 50; ++i)
    calls.push_back(
        counter.call({.kernel = "vector_add", .args = {Resident{"sum"}, scalar_vector(float(i))}, .keep = {"sum"}}));
  std::uint64_t last_version = 1;  // the put was version 1
  std::string worker;
  for (auto& f : calls) {
    JobResult r = f.get();
    ASSERT_TRUE(r.ok()) << r.status.to_string() << fleet.logs();
    EXPECT_EQ(r.actor_version, last_version + 1) << "calls answered out of turn";
    last_version = r.actor_version;
    EXPECT_TRUE(r.outputs.empty()) << "kept outputs are not returned";
    EXPECT_EQ(r.kept, std::vector<std::string>{"sum"});
    if (worker.empty()) worker = r.worker_id;
    EXPECT_EQ(r.worker_id, worker) << "an actor's calls run where it is active";
  }
  JobResult sum = counter.get("sum").get();
  ASSERT_TRUE(sum.ok()) << sum.status.to_string();
  for (float v : sum.outputs[0].values<float>()) EXPECT_FLOAT_EQ(v, 1275.0f);  // 1 + ... + 50

  // Redis holds the same state: version and bytes.
  EXPECT_EQ(fleet.redis().command({"HGET", "bridge:actor:default/counter", "version"}), "51");
  ActorInfo info;
  ASSERT_TRUE(counter.info(info).is_ok());
  EXPECT_TRUE(info.found);
  EXPECT_EQ(info.version, 51u);
  EXPECT_EQ(info.worker_id, worker);
  ASSERT_EQ(info.resident.size(), 1u);
  EXPECT_EQ(info.resident[0].name, "sum");
  EXPECT_EQ(info.resident[0].bytes, 16u);
  EXPECT_EQ(info.tenant_resident_bytes, 16u);
}

TEST(Actors, ResidentWeightsAreUploadedOnceAndUsedByLaterCalls) {
  Fleet fleet({.workers = 1});
  Client client(fleet.client_options());
  Actor model(client, "", "model");
  const Tensor w = random_tensor({8, 4}, 1), x = random_tensor({2, 8}, 2);
  ASSERT_TRUE(model.put("weights", w).get().ok());
  JobResult direct = client.run({.kernel = "matmul", .inputs = {x, w}});
  JobResult via_actor = model.call({.kernel = "matmul", .args = {x, Resident{"weights"}}}).get();
  ASSERT_TRUE(direct.ok() && via_actor.ok()) << via_actor.status.to_string();
  ASSERT_EQ(via_actor.outputs.size(), 1u);
  const auto a = direct.outputs[0].values<float>(), b = via_actor.outputs[0].values<float>();
  ASSERT_EQ(a.size(), b.size());
  for (std::size_t i = 0; i < a.size(); ++i) EXPECT_FLOAT_EQ(a[i], b[i]);
  EXPECT_EQ(via_actor.actor_version, 1u) << "a call that keeps nothing leaves the version alone";

  JobResult missing = model.call({.kernel = "matmul", .args = {x, Resident{"nope"}}}).get();
  EXPECT_EQ(missing.status.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(missing.status.message().find("no resident tensor 'nope'"), std::string::npos) << missing.status.message();
}

TEST(Actors, AKilledWorkerLosesNothingTheCallRunsAgainFromRedisInOrder) {
  Fleet fleet({.workers = 1, .slots = 2});
  Client client(fleet.client_options());
  Actor acc(client, "", "acc");
  ASSERT_TRUE(acc.put("sum", scalar_vector(0)).get().ok());
  ASSERT_TRUE(
      acc.call({.kernel = "vector_add", .args = {Resident{"sum"}, scalar_vector(1)}, .keep = {"sum"}}).get().ok());
  // A slow call holds the turn on worker-0; two more calls queue behind it.
  auto slow = acc.call({.kernel = "sleep", .params = {{"ms", 3000}}});
  auto add2 = acc.call({.kernel = "vector_add", .args = {Resident{"sum"}, scalar_vector(2)}, .keep = {"sum"}});
  auto add3 = acc.call({.kernel = "vector_add", .args = {Resident{"sum"}, scalar_vector(3)}, .keep = {"sum"}});
  ASSERT_TRUE(fleet.wait_for_inflight(1)) << fleet.logs();
  fleet.add_worker(2);
  ASSERT_TRUE(fleet.wait_for_workers(2)) << fleet.logs();
  fleet.worker(0).kill_hard();
  JobResult s = slow.get(), r2 = add2.get(), r3 = add3.get();
  ASSERT_TRUE(s.ok()) << s.status.to_string() << fleet.logs();
  EXPECT_EQ(s.attempts, 2);
  EXPECT_EQ(s.worker_id, "worker-1");
  ASSERT_TRUE(r2.ok() && r3.ok()) << r2.status.to_string() << r3.status.to_string();
  EXPECT_EQ(r2.actor_version, 3u);
  EXPECT_EQ(r3.actor_version, 4u);
  JobResult sum = acc.get("sum").get();
  ASSERT_TRUE(sum.ok());
  EXPECT_FLOAT_EQ(sum.outputs[0].values<float>()[0], 6.0f) << "state reloaded from Redis, every call applied once";
}

TEST(Actors, IdleActorsAreDeactivatedAndReactivatedFromRedis) {
  Fleet fleet({.workers = 1, .broker_yaml_extra = "actor_idle_ms: 200\n"});
  Client client(fleet.client_options());
  Actor a(client, "", "sleepy");
  ASSERT_TRUE(a.put("x", scalar_vector(7)).get().ok());
  ActorInfo info;
  ASSERT_TRUE(eventually([&] { return a.info(info).is_ok() && info.worker_id.empty(); }, std::chrono::seconds(5)))
      << "still active on " << info.worker_id << fleet.logs();
  EXPECT_TRUE(info.found);
  JobResult x = a.get("x").get();  // reactivated from Redis
  ASSERT_TRUE(x.ok()) << x.status.to_string();
  EXPECT_FLOAT_EQ(x.outputs[0].values<float>()[3], 7.0f);
  ASSERT_TRUE(a.info(info).is_ok());
  EXPECT_EQ(info.worker_id, "worker-0");
}

// Another writer (as a second broker would) moves the version on behind this broker's back: the
// call's claim reads it before the call runs, so the stale activation is dropped and the call runs
// on the state in Redis. State never goes back, and nothing is written over the newer version.
TEST(Actors, AVersionMovedOnInRedisIsFoundBeforeTheCallRunsAndStateNeverRegresses) {
  Fleet fleet({.workers = 1});
  Client client(fleet.client_options());
  Actor a(client, "", "contended");
  ASSERT_TRUE(a.put("v", scalar_vector(1)).get().ok());
  fleet.redis().command({"HSET", "bridge:actor:default/contended", "version", "9"});
  JobResult r = a.put("v", scalar_vector(2)).get();
  ASSERT_TRUE(r.ok()) << r.status.to_string() << fleet.logs();
  EXPECT_EQ(r.actor_version, 10u);
  EXPECT_EQ(fleet.redis().command({"HGET", "bridge:actor:default/contended", "version"}), "10");
  JobResult v = a.get("v").get();
  ASSERT_TRUE(v.ok()) << v.status.to_string();
  EXPECT_EQ(v.outputs.at(0).values<float>()[0], 2.0f);
}

// A state of several MiB moves in chunks of at most 1 MiB (so that no Redis command is large and
// admission passes between them), and comes back exactly when the actor is reactivated from Redis.
TEST(Actors, ALargeStateIsStoredInChunksReplacedWholeAndReadBackExactly) {
  Fleet fleet({.workers = 1});
  Client client(fleet.client_options());
  Actor big(client, "", "big");
  const std::string count = "return #redis.call('KEYS', ARGV[1])";
  const std::string largest =
      "local m = 0 for _, k in ipairs(redis.call('KEYS', ARGV[1])) do m = math.max(m, redis.call('STRLEN', k)) end "
      "return m";
  const Tensor first = random_tensor({655363}, 7);  // 2.5 MiB and 12 bytes: three chunks, the last one short
  ASSERT_TRUE(big.put("w", first).get().ok());
  EXPECT_EQ(fleet.redis().command({"EVAL", count, "0", "bridge:actorblob:default/big#*"}), "3");
  EXPECT_EQ(fleet.redis().command({"EVAL", largest, "0", "bridge:actorblob:default/big#*"}), "1048576");
  EXPECT_EQ(fleet.redis().command({"HSTRLEN", "bridge:actor:default/big", "n:w"}), "7");  // "2621452"
  // Staged chunks expire unless committed: committed ones no longer do.
  const std::string longest_ttl =
      "local m = -3 for _, k in ipairs(redis.call('KEYS', ARGV[1])) do m = math.max(m, redis.call('PTTL', k)) end "
      "return m";
  EXPECT_EQ(fleet.redis().command({"EVAL", longest_ttl, "0", "bridge:actorblob:default/big#*"}), "-1");

  const Tensor second = random_tensor({393216}, 8);  // 1.5 MiB: the old chunks go, two new ones stay
  ASSERT_TRUE(big.put("w", second).get().ok());
  EXPECT_EQ(fleet.redis().command({"EVAL", count, "0", "bridge:actorblob:default/big#*"}), "2");
  EXPECT_EQ(fleet.redis().command({"GET", "bridge:resident:default"}), std::to_string(second.byte_size()));

  fleet.restart_worker(0, 2);  // the activation is gone: the next call reads the state from Redis
  JobResult back = big.get("w").get();
  ASSERT_TRUE(back.ok()) << back.status.to_string() << fleet.logs();
  ASSERT_EQ(back.outputs.size(), 1u);
  ASSERT_EQ(back.outputs[0].byte_size(), second.byte_size());
  EXPECT_EQ(std::memcmp(back.outputs[0].bytes().data(), second.bytes().data(), second.byte_size()), 0)
      << "the state read back from its chunks differs from what was kept";
}

// A kept name given twice would count its bytes twice against max_resident_bytes and keep only one
// of the outputs; more names than outputs would be ignored. Both are refused, naming the fault.
TEST(Actors, KeepNamesGivenTwiceOrForOutputsThatDoNotExistAreRefused) {
  Fleet fleet({.workers = 1});
  Client client(fleet.client_options());
  Actor a(client, "", "keeper");
  JobResult twice =
      a.call({.kernel = "passthrough", .args = {scalar_vector(1), scalar_vector(2)}, .keep = {"d", "d"}}).get();
  EXPECT_EQ(twice.status.code(), StatusCode::kInvalidArgument) << twice.status.to_string();
  EXPECT_NE(twice.status.message().find("keep_outputs names 'd' twice"), std::string::npos) << twice.status.message();
  JobResult extra = a.call({.kernel = "passthrough", .args = {scalar_vector(1)}, .keep = {"k", "extra"}}).get();
  EXPECT_EQ(extra.status.code(), StatusCode::kInvalidArgument) << extra.status.to_string();
  EXPECT_NE(extra.status.message().find("keep_outputs names 2 outputs; passthrough gives 1"), std::string::npos)
      << extra.status.message();
  EXPECT_EQ(fleet.redis().command({"GET", "bridge:resident:default"}), "<nil>") << "nothing was kept";
  // Two names, each once, for two outputs: both kept.
  JobResult ok =
      a.call({.kernel = "passthrough", .args = {scalar_vector(1), scalar_vector(2)}, .keep = {"d", "e"}}).get();
  ASSERT_TRUE(ok.ok()) << ok.status.to_string();
  EXPECT_EQ(fleet.redis().command({"GET", "bridge:resident:default"}), "32");
}

TEST(Actors, ResidentBytesCountAgainstTheTenantQuota) {
  Fleet fleet(
      {.workers = 1,
       .tenants_yaml = "defaults:\n  max_inflight_jobs: 100\ntenants:\n  default:\n    max_resident_bytes: 100\n"});
  Client client(fleet.client_options());
  Actor a(client, "", "big");
  ASSERT_TRUE(a.put("small", scalar_vector(1, 16)).get().ok());  // 64 bytes
  JobResult r = a.put("more", scalar_vector(1, 16)).get();       // 128 > 100
  EXPECT_EQ(r.status.code(), StatusCode::kResourceExhausted) << r.status.to_string();
  EXPECT_NE(r.status.message().find("max_resident_bytes"), std::string::npos) << r.status.message();
  ActorInfo info;
  ASSERT_TRUE(a.info(info).is_ok());
  EXPECT_EQ(info.resident.size(), 1u);
  EXPECT_EQ(info.tenant_resident_bytes, 64u);
  JobResult replace = a.put("small", scalar_vector(2, 16)).get();  // same size: no growth
  EXPECT_TRUE(replace.ok()) << replace.status.to_string();
}

}  // namespace
}  // namespace bridge::testing
