// Redis behind Sentinel, with real redis-server and sentinel processes on 127.0.0.1: the broker
// finds the master through the sentinels, follows a fail-over, and loses no acknowledged actor state.
#include <gtest/gtest.h>

#include <atomic>
#include <csignal>
#include <iostream>
#include <map>
#include <thread>

#include "bridge/actor.hpp"
#include "fleet.hpp"
#include "sentinel.hpp"

namespace bridge::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

const JobRequest kAdd{.kernel = "vector_add", .inputs = {Tensor::vector<float>({1, 2}), Tensor::vector<float>({3, 4})}};

TEST(Sentinel, TheBrokerFindsTheMasterThroughTheSentinelsAndFollowsAFailOver) {
  TempDir redis_dir;
  SentinelGroup group(redis_dir);
  Fleet fleet({.workers = 1, .redis_url = group.url()});
  Client client(fleet.client_options());
  JobResult first;
  ASSERT_TRUE(eventually([&] { return (first = client.run(kAdd)).ok(); }, seconds(10)))
      << first.status.to_string() << fleet.logs();
  const int old_master = group.master_port();
  EXPECT_NE(group.server(old_master).command({"GET", "bridge:epoch"}), "<nil>") << "the broker writes to the master";

  ASSERT_TRUE(group.kill_master_and_wait_for_failover(seconds(30))) << group.logs();
  const int new_master = group.master_port();
  ASSERT_NE(new_master, old_master);
  JobResult after;
  ASSERT_TRUE(eventually([&] { return (after = client.run(kAdd)).ok(); }, seconds(15)))
      << after.status.to_string() << fleet.logs();
  EXPECT_NE(fleet.broker().log().find("master at 127.0.0.1:" + std::to_string(new_master)), std::string::npos)
      << fleet.logs();
  EXPECT_EQ(fleet.broker().log().find("lost the fleet's data"), std::string::npos)
      << "the replica had the epoch: no loss\n"
      << fleet.logs();
}

// A master that freezes (SIGSTOP: its connections stay open, and nothing answers) closes nothing:
// the broker drops the connection once a reply is overdue (redis_reply_timeout_ms), asks the
// sentinels again, and serves from the master they promoted while the old one is still frozen.
TEST(Sentinel, AFrozenMasterIsLeftForTheOneTheSentinelsPromote) {
  TempDir redis_dir;
  SentinelGroup group(redis_dir);
  Fleet fleet({.workers = 1, .broker_yaml_extra = "redis_reply_timeout_ms: 1000\n", .redis_url = group.url()});
  Client client(fleet.client_options());
  JobResult first;
  ASSERT_TRUE(eventually([&] { return (first = client.run(kAdd)).ok(); }, seconds(10)))
      << first.status.to_string() << fleet.logs();
  ASSERT_TRUE(group.kill_master_and_wait_for_failover(seconds(30), SIGSTOP)) << group.logs();
  const int new_master = group.master_port();
  JobResult after;
  ASSERT_TRUE(eventually([&] { return (after = client.run(kAdd)).ok(); }, seconds(15)))
      << after.status.to_string() << fleet.logs();
  EXPECT_NE(fleet.broker().log().find("no reply within 1000 ms"), std::string::npos) << fleet.logs();
  EXPECT_NE(fleet.broker().log().find("master at 127.0.0.1:" + std::to_string(new_master)), std::string::npos)
      << fleet.logs();
}

TEST(Sentinel, AMasterNameNoSentinelKnowsIsLoggedWithEachSentinelsAnswer) {
  TempDir redis_dir;
  SentinelGroup group(redis_dir);
  std::string url = group.url();
  url.replace(url.find("/fleet/"), 7, "/nosuch/");
  FleetOptions options{.workers = 0, .redis_url = url};
  Fleet fleet(options);
  ASSERT_TRUE(eventually(
      [&] { return fleet.broker().log().find("no sentinel gave the address of master 'nosuch'") != std::string::npos; },
      seconds(10)))
      << fleet.logs();
  EXPECT_EQ(Client(fleet.client_options()).run(kAdd).status.code(), StatusCode::kUnavailable);
}

// Under load, with redis_wait_replicas: 2 (every replica), the master is killed, and restarted (it
// rejoins as a replica, so that writes are confirmed by two again). Every call is answered once; the
// acknowledged ones are exactly the ones in the state on the new master (a counter that each
// acknowledged call bumped once), and no actor call meets DATA_LOSS.
TEST(Sentinel, AFailOverUnderLoadLosesNoAcknowledgedActorStateAndNoJob) {
  TempDir redis_dir;
  SentinelGroup group(redis_dir);
  Fleet fleet({.workers = 2, .broker_yaml_extra = "redis_wait_replicas: 2\n", .redis_url = group.url()});
  Client client(fleet.client_options());
  Actor counter(client, "", "counter");
  JobResult put;
  ASSERT_TRUE(eventually([&] { return (put = counter.put("n", Tensor::vector<float>({0})).get()).ok(); }, seconds(10)))
      << put.status.to_string() << fleet.logs();

  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> acknowledged{0};  // read by this thread while the calls' thread counts
  std::uint64_t last_version = put.actor_version, regressions = 0;
  std::map<std::string, int> refusals;
  std::thread calls([&] {
    while (!stop.load()) {
      JobResult r = counter
                        .call({.kernel = "vector_add",
                               .args = {Resident{"n"}, Tensor::vector<float>({1})},
                               .keep = {"n"},
                               .timeout = seconds(60)})
                        .get();
      if (r.ok()) {
        ++acknowledged;
        if (r.actor_version <= last_version) ++regressions;
        last_version = r.actor_version;
      } else {
        ++refusals[status_code_name(r.status.code())];
        std::this_thread::sleep_for(milliseconds(50));
      }
    }
  });
  std::uint64_t jobs_ok = 0, jobs_failed = 0;
  std::thread jobs([&] {
    while (!stop.load()) {
      JobResult r = client.run(kAdd);
      if (r.ok() && r.outputs[0].values<float>()[1] == 6.0f) {
        ++jobs_ok;
      } else {
        ++jobs_failed;
        std::this_thread::sleep_for(milliseconds(50));
      }
    }
  });
  std::this_thread::sleep_for(seconds(1));
  const int old_master = group.master_port();
  const bool failed_over = group.kill_master_and_wait_for_failover(seconds(30));
  group.server(old_master).restart();
  const std::uint64_t before = acknowledged.load();
  // Service is back once calls are acknowledged again on the new master.
  const bool recovered = eventually([&] { return acknowledged >= before + 20; }, seconds(30));
  stop.store(true);
  calls.join();
  jobs.join();
  ASSERT_TRUE(failed_over) << group.logs();
  ASSERT_TRUE(recovered) << fleet.logs();

  EXPECT_EQ(regressions, 0u);
  EXPECT_EQ(refusals.count("DATA_LOSS"), 0u) << fleet.logs();
  EXPECT_GT(jobs_ok, 0u);
  JobResult n = counter.get("n").get();
  ASSERT_TRUE(n.ok()) << n.status.to_string();
  EXPECT_EQ(n.outputs[0].values<float>()[0], static_cast<float>(acknowledged.load()))
      << "every acknowledged call is in the state once, and no other; refusals: " << refusals.size();
  RedisServer& master = group.server(group.master_port());
  EXPECT_EQ(master.command({"HGET", "bridge:actor:default/counter", "version"}), std::to_string(last_version));
  std::string seen;
  for (const auto& [code, count] : refusals) seen += code + "=" + std::to_string(count) + " ";
  std::cout << "fail-over under load: " << acknowledged.load() << " actor calls acknowledged, refused: " << seen
            << "; jobs ok " << jobs_ok << ", refused " << jobs_failed << "\n";
}

// A replica of the fleet's Redis starts: the actor's put waiting for it is then acknowledged, at
// version 1, which the replica holds.
void expect_acknowledged_once_a_replica_starts(Fleet& fleet, std::future<JobResult>& put) {
  RedisServer replica(fleet.dir(), "", "", "", {"--replicaof", "127.0.0.1", std::to_string(fleet.redis().port())});
  ASSERT_EQ(put.wait_for(seconds(15)), std::future_status::ready) << fleet.logs();
  JobResult r = put.get();
  ASSERT_TRUE(r.ok()) << r.status.to_string();
  EXPECT_EQ(r.actor_version, 1u);
  EXPECT_EQ(replica.command({"HGET", "bridge:actor:default/durable", "version"}), "1");
}

// redis_wait_replicas: 1 against a Redis with no replica: the call's new state is on the master,
// but the call is not answered until a replica has it. A replica is started: the answer follows.
TEST(ReplicaWait, AnActorWriteIsAcknowledgedOnlyOnceAReplicaHasIt) {
  Fleet fleet({.workers = 1, .broker_yaml_extra = "redis_wait_replicas: 1\n"});
  Client client(fleet.client_options());
  Actor a(client, "", "durable");
  auto put = a.put("x", Tensor::vector<float>({1, 2}));
  EXPECT_EQ(put.wait_for(seconds(2)), std::future_status::timeout) << "acknowledged with no replica";
  EXPECT_EQ(fleet.redis().command({"HGET", "bridge:actor:default/durable", "version"}), "1")
      << "the master has it meanwhile";
  ASSERT_TRUE(eventually(
      [&] { return fleet.broker().log().find("fewer than redis_wait_replicas (1)") != std::string::npos; }, seconds(5)))
      << fleet.logs();
  ASSERT_NO_FATAL_FAILURE(expect_acknowledged_once_a_replica_starts(fleet, put));
}

// The connection goes while a write waits for its replica (WAIT backing off): the write is
// settled on the next connection, which has to wait for the replica in its turn (the landed state
// is touched there, so that its WAIT covers it). Before, such a call held its actor for good.
TEST(ReplicaWait, AWriteWhoseConnectionWentWhileItWaitedIsSettledOnTheNextOne) {
  Fleet fleet({.workers = 1, .broker_yaml_extra = "redis_wait_replicas: 1\n"});
  Client client(fleet.client_options());
  Actor a(client, "", "durable");
  auto put = a.put("x", Tensor::vector<float>({1, 2}));
  ASSERT_TRUE(eventually(
      [&] { return fleet.broker().log().find("fewer than redis_wait_replicas (1)") != std::string::npos; }, seconds(5)))
      << fleet.logs();
  // By now it asks once a second, and its WAIT (50 ms) is mostly not in flight when the connection goes.
  std::this_thread::sleep_for(seconds(3));
  fleet.redis().command({"CLIENT", "KILL", "TYPE", "normal"});
  ASSERT_TRUE(eventually(
      [&] { return fleet.broker().log().find("went before its new state (version 1)") != std::string::npos; },
      seconds(10)))
      << fleet.logs();
  EXPECT_EQ(put.wait_for(seconds(1)), std::future_status::timeout) << "acknowledged with no replica";
  ASSERT_NO_FATAL_FAILURE(expect_acknowledged_once_a_replica_starts(fleet, put));
  JobResult next = a.get("x").get();
  ASSERT_TRUE(next.ok()) << "the actor is free for its next call: " << next.status.to_string();
  EXPECT_EQ(next.outputs.at(0).values<float>()[1], 2.0f);
}

}  // namespace
}  // namespace bridge::testing
