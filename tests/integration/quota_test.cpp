// Tenant admission through Redis: the limit, its error, and one limit shared by two brokers.
#include <gtest/gtest.h>

#include "fleet.hpp"

namespace bridge::testing {
namespace {

FleetOptions quota_fleet() {
  FleetOptions options;
  options.workers = 2;
  options.slots = 4;
  options.tenants_yaml = "defaults:\n  max_inflight_jobs: 100\ntenants:\n  small:\n    max_inflight_jobs: 2\n  other: {}\n";
  return options;
}

TEST(Quota, JobsOverTheTenantLimitAreRefusedWithRetryAfter) {
  Fleet fleet(quota_fleet());
  Client client(fleet.client_options("small"));
  std::vector<std::future<JobResult>> futures;
  for (int i = 0; i < 5; ++i) futures.push_back(client.submit({.kernel = "sleep", .params = {{"ms", 500}}}));
  int ok = 0, refused = 0;
  for (auto& f : futures) {
    JobResult r = f.get();
    if (r.ok()) {
      ++ok;
    } else {
      EXPECT_EQ(r.status.code(), StatusCode::kResourceExhausted) << r.status.to_string();
      EXPECT_NE(r.status.message().find("max_inflight_jobs is 2"), std::string::npos) << r.status.message();
      EXPECT_GT(r.retry_after.count(), 0);
      ++refused;
    }
  }
  EXPECT_EQ(ok, 2);
  EXPECT_EQ(refused, 3);
  // Every slot was given back: the tenant's count in Redis is 0 again, and a new job is admitted.
  EXPECT_TRUE(eventually([&] { return fleet.redis().command({"HGET", "bridge:inflight:small", "broker-a"}) == "0"; },
                         std::chrono::seconds(2)));
  EXPECT_TRUE(client.run({.kernel = "sleep", .params = {{"ms", 1}}}).ok());
}

TEST(Quota, OneTenantAtItsLimitDoesNotBlockAnother) {
  Fleet fleet(quota_fleet());
  Client small(fleet.client_options("small"));
  Client other(fleet.client_options("other"));
  auto a = small.submit({.kernel = "sleep", .params = {{"ms", 300}}});
  auto b = small.submit({.kernel = "sleep", .params = {{"ms", 300}}});
  JobResult r = other.run({.kernel = "vector_add", .inputs = {Tensor::vector<float>({1}), Tensor::vector<float>({2})}});
  EXPECT_TRUE(r.ok()) << r.status.to_string();
  EXPECT_TRUE(a.get().ok());
  EXPECT_TRUE(b.get().ok());
}

TEST(Quota, TwoBrokersSharingRedisEnforceOneLimit) {
  Fleet fleet(quota_fleet());
  const int frontend2 = free_port(), backend2 = free_port();
  auto broker2 = fleet.start_broker(frontend2, backend2, "broker-b");
  // Give the second broker its own worker.
  TempDir dir;
  Process worker2({BRIDGE_TEST_WORKER_BIN, "--broker", tcp_endpoint(backend2), "--slots", "4", "--threads", "1", "--id", "worker-b"},
                  (dir.path() / "worker-b.log").string());
  Client::Options second = fleet.client_options("small");
  second.broker = tcp_endpoint(frontend2);
  Client via_a(fleet.client_options("small"));
  Client via_b(second);
  ASSERT_TRUE(eventually(
      [&] {
        FleetStatus s;
        return via_b.status(s).is_ok() && s.workers.size() == 1;
      },
      std::chrono::seconds(10)));
  std::vector<std::future<JobResult>> futures;
  for (int i = 0; i < 3; ++i) {
    futures.push_back(via_a.submit({.kernel = "sleep", .params = {{"ms", 600}}}));
    futures.push_back(via_b.submit({.kernel = "sleep", .params = {{"ms", 600}}}));
  }
  int ok = 0, refused = 0;
  for (auto& f : futures) {
    JobResult r = f.get();
    if (r.ok()) ++ok;
    else if (r.status.code() == StatusCode::kResourceExhausted) ++refused;
    else ADD_FAILURE() << r.status.to_string();
  }
  EXPECT_EQ(ok, 2) << "the limit of 2 holds across both brokers";
  EXPECT_EQ(refused, 4);
}

TEST(Quota, RedisDownMeansUnavailableNotAHangAndRecoveryAfterwards) {
  Fleet fleet(quota_fleet());
  Client client(fleet.client_options("other"));
  ASSERT_TRUE(client.run({.kernel = "sleep", .params = {{"ms", 1}}}).ok());
  const int port = fleet.redis().port();
  fleet.redis().process().kill_hard();
  JobResult r = client.run({.kernel = "sleep", .params = {{"ms", 1}}});
  EXPECT_EQ(r.status.code(), StatusCode::kUnavailable) << r.status.to_string();
  EXPECT_GT(r.retry_after.count(), 0);
  // Redis back on the same port: the broker reconnects by itself.
  TempDir dir;
  Process redis({BRIDGE_TEST_REDIS_SERVER, "--port", std::to_string(port), "--bind", "127.0.0.1", "--save", "",
                 "--appendonly", "no", "--dir", dir.path().string()},
                (dir.path() / "redis.log").string());
  EXPECT_TRUE(eventually([&] { return client.run({.kernel = "sleep", .params = {{"ms", 1}}}).ok(); }, std::chrono::seconds(15)))
      << fleet.logs();
}

}  // namespace
}  // namespace bridge::testing
