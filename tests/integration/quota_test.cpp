// Tenant admission through Redis: the limit, its error, and one limit shared by two brokers.
#include <gtest/gtest.h>

#include <signal.h>

#include <atomic>
#include <future>
#include <thread>

#include <zmq_addon.hpp>

#include "bridge/core/wire.hpp"

#include "fleet.hpp"

namespace bridge::testing {
namespace {

FleetOptions quota_fleet() {
  FleetOptions options;
  options.workers = 2;
  options.slots = 4;
  options.tenants_yaml =
      "defaults:\n  max_inflight_jobs: 100\ntenants:\n  small:\n    max_inflight_jobs: 2\n  other: {}\n";
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
  EXPECT_TRUE(eventually([&] { return fleet.redis().hash_total("bridge:inflight:small") == "0"; },
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
  Process worker2(
      {BRIDGE_TEST_WORKER_BIN, "--broker", tcp_endpoint(backend2), "--slots", "4", "--threads", "1", "--id", "worker-b",
       "--key-file", fleet.key_file("worker"), "--broker-key-file", fleet.broker_public_key_file()},
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
  EXPECT_TRUE(eventually(
      [&] {
        return client.run({.kernel = "sleep", .params = {{"ms", 1}}}).ok();
      },
      std::chrono::seconds(15)))
      << fleet.logs();
}

FleetOptions limits_fleet(const std::string& tenants_yaml, const std::string& broker_extra = "") {
  FleetOptions options;
  options.workers = 1;
  options.slots = 1;
  options.tenants_yaml = tenants_yaml;
  options.broker_yaml_extra = broker_extra;
  return options;
}

const JobRequest kNap{.kernel = "sleep", .params = {{"ms", 1}}};

TEST(Quota, FailOpenKeepsServingWithTheQuotasInForceWhileRedisIsDown) {
  Fleet fleet(limits_fleet("tenants:\n  capped:\n    max_inflight_jobs: 2\n", "redis_outage: fail-open\n"));
  Client client(fleet.client_options("capped"));
  ASSERT_TRUE(client.run(kNap).ok());
  fleet.redis().process().kill_hard();
  ASSERT_TRUE(fleet.wait_for_status([](const FleetStatus& s) { return !s.redis_connected; })) << fleet.logs();
  // Served without Redis, and the limit of 2 in flight still holds (counted by this broker).
  std::vector<std::future<JobResult>> futures;
  for (int i = 0; i < 3; ++i) futures.push_back(client.submit({.kernel = "sleep", .params = {{"ms", 400}}}));
  int ok = 0, refused = 0;
  for (auto& f : futures) {
    JobResult r = f.get();
    if (r.ok()) ++ok;
    if (r.status.code() == StatusCode::kResourceExhausted) {
      ++refused;
      EXPECT_NE(r.status.message().find("max_inflight_jobs"), std::string::npos) << r.status.message();
    }
  }
  EXPECT_EQ(ok, 2) << fleet.logs();
  EXPECT_EQ(refused, 1);
}

TEST(Quota, RateLimitRefusesBeyondTheBurstAndSaysWhenToRetry) {
  Fleet fleet(limits_fleet("tenants:\n  metered:\n    rate: 2\n    burst: 2\n"));
  Client client(fleet.client_options("metered"));
  std::vector<std::future<JobResult>> futures;
  for (int i = 0; i < 6; ++i) futures.push_back(client.submit(kNap));
  int ok = 0, refused = 0;
  for (auto& f : futures) {
    JobResult r = f.get();
    if (r.ok()) {
      ++ok;
      continue;
    }
    ++refused;
    EXPECT_EQ(r.status.code(), StatusCode::kResourceExhausted) << r.status.to_string();
    EXPECT_NE(r.status.message().find("rate of 2 jobs/s"), std::string::npos) << r.status.message();
    EXPECT_GT(r.retry_after.count(), 0);
    EXPECT_LE(r.retry_after.count(), 500);  // one token every 500 ms
  }
  // The burst of 2 passes at once; a third token needs 500 ms, far longer than sending six jobs.
  EXPECT_EQ(ok, 2);
  EXPECT_EQ(refused, 4);
}

TEST(Quota, InflightBytesAreLimitedAndAJobTooBigForTheQuotaIsTooLarge) {
  Fleet fleet(limits_fleet("tenants:\n  small:\n    max_inflight_bytes: 1000\n"));
  Client client(fleet.client_options("small"));
  auto bytes = [](std::int64_t n) { return Tensor::zeros(DType::kU8, {n}); };
  JobResult big = client.run({.kernel = "passthrough", .inputs = {bytes(2000)}});
  EXPECT_EQ(big.status.code(), StatusCode::kTooLarge) << big.status.to_string();
  // The only slot is busy, so the first 600-byte job waits in the broker holding its bytes.
  auto busy = client.submit({.kernel = "sleep", .params = {{"ms", 400}}});
  ASSERT_TRUE(fleet.wait_for_inflight(1)) << fleet.logs();
  auto first = client.submit({.kernel = "passthrough", .inputs = {bytes(600)}});
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  JobResult second = client.run({.kernel = "passthrough", .inputs = {bytes(600)}});
  EXPECT_EQ(second.status.code(), StatusCode::kResourceExhausted) << second.status.to_string();
  EXPECT_NE(second.status.message().find("max_inflight_bytes of 1000"), std::string::npos) << second.status.message();
  EXPECT_TRUE(busy.get().ok());
  EXPECT_TRUE(first.get().ok());
}

TEST(Quota, KernelsAndPrioritiesOutsideTheTenantsListAreDenied) {
  Fleet fleet(limits_fleet("tenants:\n  narrow:\n    kernels: [sleep]\n    min_priority: 0\n    max_priority: 3\n"));
  Client client(fleet.client_options("narrow"));
  JobResult r =
      client.run({.kernel = "vector_add", .inputs = {Tensor::vector<float>({1}), Tensor::vector<float>({1})}});
  EXPECT_EQ(r.status.code(), StatusCode::kPermissionDenied) << r.status.to_string();
  EXPECT_NE(r.status.message().find("may not run kernel 'vector_add'"), std::string::npos) << r.status.message();
  JobRequest urgent = kNap;
  urgent.priority = 9;
  r = client.run(urgent);
  EXPECT_EQ(r.status.code(), StatusCode::kPermissionDenied);
  EXPECT_NE(r.status.message().find("priorities 0..3"), std::string::npos) << r.status.message();
  urgent.priority = 3;
  EXPECT_TRUE(client.run(urgent).ok());
}

TEST(Quota, AnEditedTenantsFileIsAppliedWhileRunningAndABadEditIsRefused) {
  Fleet fleet(limits_fleet("tenants:\n  t:\n    max_inflight_jobs: 1\n", "tenants_reload_ms: 200\n"));
  Client client(fleet.client_options("t"));
  auto limit = [&] {
    QuotaReport report;
    return client.quotas("t", report).is_ok() && !report.tenants.empty() ? report.tenants[0].max_inflight_jobs : 0u;
  };
  ASSERT_EQ(limit(), 1u);
  fleet.write_tenants("tenants:\n  t:\n    max_inflight_jobs: 3\n");
  EXPECT_TRUE(eventually([&] { return limit() == 3u; }, std::chrono::seconds(2))) << fleet.broker().log();
  // Broken on line 3: refused with file, line and key; the quotas in force stay.
  fleet.write_tenants("tenants:\n  t:\n    max_inflight_jobs: lots\n");
  EXPECT_TRUE(eventually([&] { return fleet.broker().log().find("tenants not reloaded") != std::string::npos; },
                         std::chrono::seconds(2)));
  EXPECT_NE(fleet.broker().log().find("tenants.yaml:3: tenants.t.max_inflight_jobs"), std::string::npos)
      << fleet.broker().log();
  EXPECT_EQ(limit(), 3u);
}

// "team" with actor "a/m" and "team/a" with actor "m" would share one Redis key: a tenant name with
// a separator is refused where it is written, with the file, line and key.
TEST(Quota, ATenantNameThatCouldCollideIsRefusedOnReload) {
  Fleet fleet(limits_fleet("tenants:\n  team: {}\n", "tenants_reload_ms: 200\n"));
  fleet.write_tenants("tenants:\n  team: {}\n  team/a: {}\n");
  EXPECT_TRUE(eventually([&] { return fleet.broker().log().find("tenants not reloaded") != std::string::npos; },
                         std::chrono::seconds(2)));
  EXPECT_NE(fleet.broker().log().find(": tenants.team/a: tenant names must be 1 to 64 characters"), std::string::npos)
      << fleet.broker().log();
  EXPECT_TRUE(Client(fleet.client_options("team")).run(kNap).ok());
}

TEST(Quota, SighupReloadsTheTenantsFileAtOnce) {
  Fleet fleet(limits_fleet("tenants:\n  t: {}\n", "tenants_reload_ms: 0\n"));
  Client client(fleet.client_options("t"));
  fleet.write_tenants("tenants:\n  t: {}\n  newcomer: {}\n");
  // Its key is listed in the file, which the broker has not read yet.
  EXPECT_EQ(Client(fleet.client_options("newcomer")).run(kNap).status.code(), StatusCode::kUnauthenticated);
  fleet.broker().signal(SIGHUP);
  EXPECT_TRUE(
      eventually([&] { return Client(fleet.client_options("newcomer")).run(kNap).ok(); }, std::chrono::seconds(2)))
      << fleet.broker().log();
}

// SIGHUPs while the broker is busy with jobs: each reload happens, none interrupts the broker's
// sends and receives (a signal handler once did, which libzmq reports as EINTR: the broker died), and
// every job is answered. Workers, which take no SIGHUP, are not sent any.
TEST(Quota, SighupsWhileJobsFlowLeaveTheBrokerServing) {
  Fleet fleet(limits_fleet("tenants:\n  t:\n    max_inflight_jobs: 5000\n", "tenants_reload_ms: 0\n"));
  Client client(fleet.client_options("t"));
  std::atomic<bool> done{false};
  std::thread hangups([&] {
    while (!done.load()) {
      fleet.broker().signal(SIGHUP);
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  });
  std::vector<std::future<JobResult>> answers;
  for (int i = 0; i < 2000; ++i)
    answers.push_back(client.submit(
        {.kernel = "vector_add", .inputs = {Tensor::vector<float>({float(i)}), Tensor::vector<float>({1})}}));
  int ok = 0;
  for (int i = 0; i < 2000; ++i) {
    JobResult r = answers[static_cast<std::size_t>(i)].get();
    ok += r.ok() && r.outputs[0].values<float>()[0] == float(i) + 1 ? 1 : 0;
  }
  done = true;
  hangups.join();
  EXPECT_EQ(ok, 2000) << fleet.broker().log();
  EXPECT_TRUE(fleet.broker().running()) << fleet.broker().log();
  EXPECT_NE(fleet.broker().log().find("tenants reloaded (SIGHUP)"), std::string::npos) << fleet.broker().log();
}

TEST(Quota, QuotaShowReportsLiveUsageFleetWide) {
  Fleet fleet(limits_fleet("tenants:\n  t:\n    max_inflight_jobs: 5\n    rate: 100\n"));
  Client client(fleet.client_options("t"));
  auto a = client.submit({.kernel = "sleep", .params = {{"ms", 400}}});
  auto b = client.submit({.kernel = "sleep", .params = {{"ms", 400}}});
  QuotaReport report;
  ASSERT_TRUE(eventually([&] { return client.quotas("t", report).is_ok() && report.tenants.at(0).inflight_jobs == 2; },
                         std::chrono::seconds(2)));
  EXPECT_EQ(report.tenants[0].max_inflight_jobs, 5u);
  EXPECT_GE(report.tenants[0].rate_tokens, 0);
  EXPECT_LT(report.tenants[0].rate_tokens, 100);
  EXPECT_NE(report.tenants_file.find("tenants.yaml"), std::string::npos);
  EXPECT_TRUE(a.get().ok());
  EXPECT_TRUE(b.get().ok());
  EXPECT_EQ(client.quotas("nobody", report).code(), StatusCode::kPermissionDenied);  // not t's to see
  EXPECT_EQ(Client(fleet.client_options("operator")).quotas("nobody", report).code(), StatusCode::kUnknownTenant);
}

TEST(Quota, AdmissionLeasesCapacityInBlocksInsteadOfAskingRedisPerJob) {
  Fleet fleet(limits_fleet("tenants:\n  t:\n    max_inflight_jobs: 1000\n"));
  Client client(fleet.client_options("t"));
  auto eval_calls = [&] {
    const std::string stats = fleet.redis().command({"INFO", "commandstats"});
    const auto at = stats.find("cmdstat_eval:calls=");
    return at == std::string::npos ? 0 : std::stoll(stats.substr(at + 19));
  };
  const long long before = eval_calls();
  std::vector<std::future<JobResult>> futures;
  for (int i = 0; i < 400; ++i) futures.push_back(client.submit(kNap));
  for (auto& f : futures) {
    JobResult r = f.get();
    ASSERT_TRUE(r.ok()) << r.status.to_string();
  }
  // Blocks of 1000/16 = 62 jobs: far fewer scripts than jobs (one per job before leasing).
  EXPECT_LT(eval_calls() - before, 100) << "admission scripts for 400 jobs";
  // Idle again: the lease goes back, so other brokers could use the capacity.
  EXPECT_TRUE(eventually([&] { return fleet.redis().hash_total("bridge:inflight:t") == "0"; },
                         std::chrono::seconds(3)));
}

TEST(Quota, ClientRetriesWithBackoffWhenAskedTo) {
  Fleet fleet(limits_fleet("tenants:\n  t:\n    max_inflight_jobs: 1\n"));
  Client::Options patient = fleet.client_options("t");
  patient.retry.max_attempts = 50;
  Client client(patient);
  std::vector<std::future<JobResult>> futures;
  for (int i = 0; i < 3; ++i) futures.push_back(client.submit({.kernel = "sleep", .params = {{"ms", 100}}}));
  for (auto& f : futures) EXPECT_TRUE(f.get().ok());  // without retries, two of them would be refused
  Client impatient(fleet.client_options("t"));
  auto held = impatient.submit({.kernel = "sleep", .params = {{"ms", 300}}});
  ASSERT_TRUE(fleet.wait_for_inflight(1));
  EXPECT_EQ(impatient.run(kNap).status.code(), StatusCode::kResourceExhausted);
  EXPECT_TRUE(held.get().ok());
}

}  // namespace
}  // namespace bridge::testing

namespace bridge::testing {
namespace {

// Actor calls wait for their turns before their quota is asked; the broker bounds how many a tenant
// may park there by its own max_inflight_jobs, so a flood of calls cannot fill the broker's queue.
TEST(Quota, ActorCallsWaitingForTheirTurnsAreBoundedByTheTenantsQuota) {
  FleetOptions options;
  options.workers = 1;
  options.tenants_yaml = "tenants:\n  default:\n    max_inflight_jobs: 2\n";
  Fleet fleet(options);
  Client client(fleet.client_options());
  const JobRequest call{
      .kernel = "sleep", .params = {{"ms", 500}}, .actor_id = "a1", .timeout = std::chrono::seconds(10)};
  std::vector<std::future<JobResult>> calls;
  for (int i = 0; i < 6; ++i) calls.push_back(client.submit(call));
  int ok = 0, refused = 0;
  for (auto& f : calls) {
    JobResult r = f.get();
    if (r.ok()) ++ok;
    if (r.status.code() == StatusCode::kResourceExhausted) {
      ++refused;
      EXPECT_NE(r.status.message().find("actor calls waiting for their actors' turns"), std::string::npos)
          << r.status.message();
    }
  }
  // At most 2 wait (max_inflight_jobs), plus the one holding the turn if it took it before the
  // others arrived; the rest are refused.
  EXPECT_EQ(ok + refused, 6);
  EXPECT_GE(ok, 2);
  EXPECT_LE(ok, 3);
}

// Quota requests cost Redis a script per tenant on admission's connection: a flood of them is
// answered without usage beyond a few at a time, and other tenants' jobs are still admitted.
TEST(Quota, AFloodOfQuotaRequestsDoesNotStarveAdmission) {
  FleetOptions options;
  options.workers = 1;
  options.tenants_yaml = "tenants:\n  default:\n    max_inflight_jobs: 2\n";  // every job asks Redis
  Fleet fleet(options);
  zmq::context_t context;
  zmq::socket_t flood(context, zmq::socket_type::dealer);
  flood.set(zmq::sockopt::linger, 0);
  fleet.secure_client_socket(flood);
  flood.connect(fleet.frontend());
  for (std::uint64_t i = 1; i <= 2000; ++i) {
    flatbuffers::FlatBufferBuilder fbb;
    auto body = wire::CreateQuotaRequest(fbb, i, fbb.CreateString(""));
    core::Frames frames;
    frames.push_back(core::finish_envelope(fbb, wire::Body::QuotaRequest, body.Union()));
    zmq::send_multipart(flood, frames);
  }
  Client client(fleet.client_options());
  for (int i = 0; i < 5; ++i) {
    JobResult r = client.run({.kernel = "passthrough", .inputs = {Tensor::vector<float>({1})}});
    EXPECT_TRUE(r.ok()) << r.status.to_string();
  }
  int answered = 0, busy = 0;
  zmq::pollitem_t item{flood.handle(), 0, ZMQ_POLLIN, 0};
  while (answered < 2000 && zmq::poll(&item, 1, std::chrono::seconds(5)) > 0) {
    core::Frames frames;
    (void)zmq::recv_multipart(flood, std::back_inserter(frames));
    const wire::Envelope* envelope = nullptr;
    if (!core::decode_envelope(frames[0], core::Limits{}, envelope).is_ok()) continue;
    if (const auto* reply = envelope->body_as_QuotaReply()) {
      ++answered;
      if (core::view(reply->error()).find("quota requests already") != std::string_view::npos) ++busy;
    }
  }
  EXPECT_EQ(answered, 2000) << "every quota request is answered";
  EXPECT_GT(busy, 0);
}

}  // namespace
}  // namespace bridge::testing
