// Workers dying and leaving: jobs move to another worker, each client gets exactly one answer.
#include <gtest/gtest.h>

#include <signal.h>

#include <condition_variable>
#include <map>
#include <mutex>
#include <optional>
#include <thread>

#include <zmq_addon.hpp>

#include "bridge/core/job_codec.hpp"

#include "fleet.hpp"
#include "raw_worker.hpp"

namespace bridge::testing {
namespace {

TEST(Failover, JobsOfAKilledWorkerRunElsewhereAndAnswerOnce) {
  FleetOptions options;
  options.workers = 2;
  options.slots = 2;
  Fleet fleet(options);
  Client client(fleet.client_options());
  std::vector<std::future<JobResult>> futures;
  for (int i = 0; i < 4; ++i) futures.push_back(client.submit({.kernel = "sleep", .params = {{"ms", 700}}}));
  // Wait until all four are running (two on each worker), then kill worker-0 mid-job.
  ASSERT_TRUE(fleet.wait_for_inflight(4)) << fleet.logs();
  fleet.worker(0).kill_hard();
  int ok = 0, moved = 0;
  for (auto& f : futures) {
    ASSERT_EQ(f.wait_for(std::chrono::seconds(15)), std::future_status::ready) << fleet.logs();
    JobResult r = f.get();
    ASSERT_TRUE(r.ok()) << r.status.to_string() << fleet.logs();
    ++ok;
    if (r.attempts == 2) {
      ++moved;
      EXPECT_EQ(r.worker_id, "worker-1");
    }
  }
  EXPECT_EQ(ok, 4);
  EXPECT_EQ(moved, 2);
  FleetStatus s;
  ASSERT_TRUE(client.status(s).is_ok());
  ASSERT_EQ(s.workers.size(), 1u);  // the dead one was removed
  EXPECT_EQ(s.workers[0].id, "worker-1");
}

TEST(Failover, AJobWhoseWorkersKeepDyingEndsWorkerLost) {
  FleetOptions options;
  options.workers = 1;
  options.slots = 1;
  options.broker_yaml_extra = "max_attempts: 2\n";
  Fleet fleet(options);
  Client client(fleet.client_options());
  auto future = client.submit({.kernel = "sleep", .params = {{"ms", 5000}}});
  for (int attempt = 0; attempt < 2; ++attempt) {
    const std::string holder = "worker-" + std::to_string(attempt);
    ASSERT_TRUE(eventually(
        [&] {
          FleetStatus s;
          if (!client.status(s).is_ok()) return false;
          return std::any_of(s.workers.begin(), s.workers.end(),
                             [&](const WorkerInfo& w) { return w.id == holder && w.inflight == 1; });
        },
        std::chrono::seconds(5)))
        << fleet.logs();
    fleet.worker(attempt).kill_hard();
    fleet.add_worker(1);
  }
  JobResult r = future.get();
  EXPECT_EQ(r.status.code(), StatusCode::kWorkerLost) << r.status.to_string();
}

TEST(Failover, StoppedWorkerFinishesItsJobsThenLeaves) {
  FleetOptions options;
  options.workers = 1;
  options.slots = 2;
  Fleet fleet(options);
  Client client(fleet.client_options());
  std::vector<std::future<JobResult>> futures;
  for (int i = 0; i < 2; ++i) futures.push_back(client.submit({.kernel = "sleep", .params = {{"ms", 400}}}));
  ASSERT_TRUE(fleet.wait_for_inflight(2)) << fleet.logs();
  fleet.worker(0).signal(SIGTERM);
  for (auto& f : futures) {
    JobResult r = f.get();
    EXPECT_TRUE(r.ok()) << r.status.to_string();
    EXPECT_EQ(r.attempts, 1);  // finished where it started, not re-run
  }
  EXPECT_EQ(fleet.worker(0).wait(std::chrono::seconds(5)), 0) << fleet.worker(0).log();
  EXPECT_TRUE(fleet.wait_for_workers(0, std::chrono::seconds(2)));
}

TEST(Failover, BrokerRestartMakesWorkersRegisterAgain) {
  FleetOptions options;
  options.workers = 1;
  Fleet fleet(options);
  const int frontend = std::stoi(fleet.frontend().substr(fleet.frontend().rfind(':') + 1));
  const int backend = std::stoi(fleet.backend().substr(fleet.backend().rfind(':') + 1));
  fleet.broker().kill_hard();
  auto second = fleet.start_broker(frontend, backend, "broker-b");
  // The worker hears nothing, or hears Reregister after its heartbeat reaches the new broker.
  ASSERT_TRUE(fleet.wait_for_workers(1, std::chrono::seconds(10))) << second->log();
  Client client(fleet.client_options());
  JobResult r =
      client.run({.kernel = "vector_add", .inputs = {Tensor::vector<float>({1}), Tensor::vector<float>({1})}});
  EXPECT_TRUE(r.ok()) << r.status.to_string();
}

TEST(Failover, ABrokerRestartLosesNoJobTheClientSendsThemAgain) {
  Fleet fleet({.workers = 2, .slots = 2});
  Client::Options options = fleet.client_options();
  options.broker_check = std::chrono::milliseconds(200);
  std::mutex mutex;
  std::map<std::uint64_t, int> answers;  // job id -> results delivered
  std::vector<JobResult> results;
  std::condition_variable done;
  Client client(options);  // after what its callbacks touch: it answers what is pending as it goes
  constexpr int kJobs = 24;
  for (int i = 0; i < kJobs; ++i) {
    JobRequest job = i % 2 == 0 ? JobRequest{.kernel = "sleep", .params = {{"ms", 300}}}
                                : JobRequest{.kernel = "vector_add", .inputs = {Tensor::vector<float>({float(i)}),
                                                                                 Tensor::vector<float>({1})}};
    job.timeout = std::chrono::seconds(20);
    client.submit(job, [&](JobResult r) {
      std::lock_guard lock(mutex);
      ++answers[r.job_id];
      results.push_back(std::move(r));
      done.notify_all();
    });
  }
  ASSERT_TRUE(fleet.wait_for_inflight(4)) << fleet.logs();
  fleet.restart_broker();
  std::unique_lock lock(mutex);
  ASSERT_TRUE(done.wait_for(lock, std::chrono::seconds(20), [&] { return results.size() >= kJobs; })) << fleet.logs();
  lock.unlock();
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // room for a duplicate to show up
  lock.lock();
  EXPECT_EQ(results.size(), std::size_t{kJobs});
  for (const auto& [id, count] : answers) EXPECT_EQ(count, 1) << "job " << id << " answered " << count << " times";
  for (const auto& r : results) EXPECT_TRUE(r.ok()) << r.job_id << ": " << r.status.to_string();
  EXPECT_GT(client.resent_after_restart(), 0u) << "no job was pending at the restart";
}

// A worker that registers and heartbeats but never answers its jobs, not even a Cancel (a raw
// DEALER playing a worker). The client is answered at its deadline; the tenant keeps the slot it
// occupies until the worker lets go of it, here by being declared lost.
// One connection of a raw worker: its routing id (empty: the worker's id), and what its hello says.
TEST(Failover, JobWhoseWorkerNeverAnswersIsAnsweredAtItsDeadlineAndHoldsItsSlotUntilTheWorkerIsLost) {
  FleetOptions options;
  options.workers = 0;
  options.tenants_yaml = "tenants:\n  default:\n    max_inflight_jobs: 4\n";  // under 16: leased one at a time
  options.broker_yaml_extra = "cancel_grace_ms: 1200\n";
  Fleet fleet(options);
  zmq::context_t context;
  zmq::socket_t silent = raw_worker(context, fleet, "silent-worker", 100);
  std::mutex socket_mutex;
  auto send = [&](flatbuffers::FlatBufferBuilder& fbb, wire::Body type, flatbuffers::Offset<void> body) {
    core::Frames frames;
    frames.push_back(core::finish_envelope(fbb, type, body));
    std::lock_guard lock(socket_mutex);
    zmq::send_multipart(silent, frames);
  };
  std::atomic<bool> alive{true};
  std::atomic<int> cancels{0};
  std::thread worker([&] {
    while (alive) {
      {
        flatbuffers::FlatBufferBuilder fbb;
        send(fbb, wire::Body::Heartbeat, wire::CreateHeartbeat(fbb, 1).Union());
      }
      for (int i = 0; i < 5; ++i) {
        core::Frames frames;
        {
          std::lock_guard lock(socket_mutex);
          if (!zmq::recv_multipart(silent, std::back_inserter(frames), zmq::recv_flags::dontwait)) break;
        }
        const wire::Envelope* envelope = nullptr;  // decode_envelope realigns: received frames may not be
        if (core::decode_envelope(frames[0], core::Limits{}, envelope).is_ok() &&
            envelope->body_type() == wire::Body::Cancel)
          ++cancels;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  });
  ASSERT_TRUE(fleet.wait_for_workers(1));
  Client client(fleet.client_options());
  const auto start = std::chrono::steady_clock::now();
  JobResult r = client.run({.kernel = "sleep", .params = {{"ms", 1}}, .timeout = std::chrono::milliseconds(300)});
  EXPECT_EQ(r.status.code(), StatusCode::kDeadlineExceeded) << r.status.to_string();
  EXPECT_NE(r.status.message().find("ran on worker silent-worker past its deadline"), std::string::npos)
      << r.status.message();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(1000)) << "answered late";
  EXPECT_TRUE(eventually([&] { return cancels.load() == 1; }, std::chrono::seconds(2)))
      << "the worker was not told to stop";
  // The worker still holds the slot: so does the tenant.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(fleet.redis().hash_total("bridge:inflight:default"), "1");
  // It keeps heartbeating but never stops the job: past cancel_grace_ms it is declared lost, which
  // frees the slot and the lease.
  EXPECT_TRUE(
      eventually([&] { return fleet.redis().hash_total("bridge:inflight:default") == "0"; }, std::chrono::seconds(4)))
      << fleet.logs();
  // The job's id is the client's: 1 unless its start-up ping took that one first.
  EXPECT_NE(fleet.broker().log().find("silent-worker lost (it did not stop job " + std::to_string(r.job_id) +
                                      " of tenant default within cancel_grace_ms"),
            std::string::npos)
      << fleet.broker().log();
  alive = false;
  worker.join();
}

// A worker (a raw DEALER) that answers its dispatch with a result the broker cannot forward: the
// client gets INTERNAL naming the worker, and the slot is free again.
TEST(Failover, AResultTheBrokerCannotForwardIsAnsweredInternalAndFreesTheSlot) {
  Fleet fleet({.workers = 0});
  zmq::context_t context;
  zmq::socket_t rogue = raw_worker(context, fleet, "corrupt-worker", 1000);
  ASSERT_TRUE(fleet.wait_for_workers(1));
  Client client(fleet.client_options());
  // Takes the next dispatch and answers it with a result the broker must not forward.
  // `inline_bytes`: an output whose bytes are inline, that many of them.
  auto answer_badly = [&](wire::StatusCode status, bool declare_an_output_without_its_frame,
                          std::optional<std::size_t> inline_bytes) {
    zmq::pollitem_t item{rogue.handle(), 0, ZMQ_POLLIN, 0};
    std::uint64_t dispatch_id = 0;
    while (dispatch_id == 0 && zmq::poll(&item, 1, std::chrono::seconds(3)) > 0) {
      core::Frames frames;
      (void)zmq::recv_multipart(rogue, std::back_inserter(frames));
      const wire::Envelope* envelope = nullptr;
      if (core::decode_envelope(frames[0], core::Limits{}, envelope).is_ok() &&
          envelope->body_type() == wire::Body::Dispatch)
        dispatch_id = envelope->body_as_Dispatch()->dispatch_id();
    }
    ASSERT_NE(dispatch_id, 0u);
    flatbuffers::FlatBufferBuilder fbb;
    fbb.ForceDefaults(true);
    std::vector<std::int64_t> shape{4};
    std::vector<flatbuffers::Offset<wire::TensorDesc>> outputs;
    if (declare_an_output_without_its_frame)
      outputs.push_back(
          wire::CreateTensorDesc(fbb, fbb.CreateString("out"), wire::DType::F32, fbb.CreateVector(shape)));
    if (inline_bytes) {
      const std::vector<std::int64_t> inline_shape{static_cast<std::int64_t>(*inline_bytes)};
      const std::vector<std::uint8_t> data(*inline_bytes, 7);
      outputs.push_back(wire::CreateTensorDesc(fbb, fbb.CreateString("out"), wire::DType::U8,
                                               fbb.CreateVector(inline_shape), 0, fbb.CreateVector(data)));
    }
    wire::Timings timings(0, 0, 0);
    auto result = wire::CreateJobResult(fbb, dispatch_id, status, 0, fbb.CreateVector(outputs), 0,
                                        wire::DeviceKind::Cpu, 0, 0, &timings);
    core::Frames frames;
    frames.push_back(core::finish_envelope(fbb, wire::Body::JobResult, result.Union()));
    zmq::send_multipart(rogue, frames);
  };
  const JobRequest job{.kernel = "sleep", .params = {{"ms", 1}}, .timeout = std::chrono::milliseconds(3000)};
  // The client takes inline outputs of up to 4096 bytes (Options::inline_bytes): not 8192.
  for (auto [status, missing_frame, inline_bytes, why] :
       {std::tuple{wire::StatusCode::OK, true, std::optional<std::size_t>(), "fewer frames than outputs"},
        std::tuple{wire::StatusCode::ACTOR_NOT_ACTIVE, false, std::optional<std::size_t>(),
                   "ACTOR_NOT_ACTIVE in the result of a job that is no actor call"},
        std::tuple{static_cast<wire::StatusCode>(999), false, std::optional<std::size_t>(),
                   "status code 999 is not one of the protocol's"},
        std::tuple{wire::StatusCode::OK, false, std::optional<std::size_t>(8192),
                   "output 0 is inline (8192 bytes) where the request took inline outputs of at most 4096"}}) {
    auto answer = client.submit(job);
    answer_badly(status, missing_frame, inline_bytes);
    ASSERT_EQ(answer.wait_for(std::chrono::seconds(2)), std::future_status::ready) << fleet.logs();
    JobResult r = answer.get();
    EXPECT_EQ(r.status.code(), StatusCode::kInternal) << r.status.to_string();
    EXPECT_NE(r.status.message().find("worker corrupt-worker sent a result the broker cannot forward"),
              std::string::npos)
        << r.status.message();
    EXPECT_NE(r.status.message().find(why), std::string::npos) << r.status.message();
    EXPECT_TRUE(fleet.wait_for_inflight(0, std::chrono::seconds(2)));
  }
  // A client that takes no inline outputs (inline_bytes 0) gets none, an empty one neither.
  Client::Options frames_only = fleet.client_options();
  frames_only.inline_bytes = 0;
  Client plain(frames_only);
  for (std::size_t bytes : {std::size_t{16}, std::size_t{0}}) {
    auto answer = plain.submit(job);
    answer_badly(wire::StatusCode::OK, false, bytes);
    ASSERT_EQ(answer.wait_for(std::chrono::seconds(2)), std::future_status::ready) << fleet.logs();
    JobResult r = answer.get();
    EXPECT_EQ(r.status.code(), StatusCode::kInternal) << r.status.to_string();
    EXPECT_NE(r.status.message().find("output 0 is inline where the request took no inline outputs"), std::string::npos)
        << r.status.message();
  }
  EXPECT_NE(fleet.broker().log().find("corrupt result"), std::string::npos);
}

// Each connection of a worker has its own routing id, and its hello lists what the worker holds. A
// job sent on an older connection that the new hello does not list never arrived there: it is sent
// again (on the new connection, the only worker here). One the hello lists stays, and its answer on
// the new connection is taken. A closed connection's hello that arrives late changes nothing.
TEST(Failover, WhatAWorkersNewConnectionDoesNotHoldRunsAgainAndAStaleHelloChangesNothing) {
  // max_attempts 1: a job sent again because it went to a closed connection is no loss of a worker.
  Fleet fleet({.workers = 0, .broker_yaml_extra = "max_attempts: 1\n"});
  zmq::context_t context;
  constexpr std::uint32_t kHeartbeatMs = 20000;  // liveness is not what this is about
  zmq::socket_t first = raw_worker(context, fleet, "mover", kHeartbeatMs, {.route = "mover/1", .number = 1});
  ASSERT_TRUE(fleet.wait_for_workers(1));
  Client client(fleet.client_options());
  const JobRequest job{.kernel = "sleep", .params = {{"ms", 1}}, .timeout = std::chrono::milliseconds(20000)};
  const auto wait = std::chrono::seconds(5);

  // Sent on connection 1, which goes away unanswered; connection 2's hello holds nothing.
  auto lost = client.submit(job);
  ASSERT_NE(next_dispatch(first, wait), 0u) << fleet.logs();
  zmq::socket_t second = raw_worker(context, fleet, "mover", kHeartbeatMs, {.route = "mover/2", .number = 2});
  const std::uint64_t again = next_dispatch(second, wait);
  ASSERT_NE(again, 0u) << "the job sent on the older connection was not sent again\n" << fleet.logs();
  answer_ok(second, again);
  ASSERT_EQ(lost.wait_for(wait), std::future_status::ready) << fleet.logs();
  JobResult r = lost.get();
  EXPECT_TRUE(r.ok()) << r.status.to_string();
  EXPECT_EQ(r.attempts, 2);

  // Sent on connection 2 and listed by connection 3's hello: it stays, answered on connection 3.
  auto kept = client.submit(job);
  const std::uint64_t held = next_dispatch(second, wait);
  ASSERT_NE(held, 0u) << fleet.logs();
  zmq::socket_t third =
      raw_worker(context, fleet, "mover", kHeartbeatMs, {.route = "mover/3", .number = 3, .running = {held}});
  EXPECT_EQ(next_dispatch(third, std::chrono::milliseconds(500)), 0u) << "a job the worker held was sent again";
  answer_ok(third, held);
  ASSERT_EQ(kept.wait_for(wait), std::future_status::ready) << fleet.logs();
  r = kept.get();
  EXPECT_TRUE(r.ok()) << r.status.to_string();
  EXPECT_EQ(r.attempts, 1);

  // Connection 1's hello again, as if delivered late: ignored; jobs keep going to connection 3.
  zmq::socket_t stale = raw_worker(context, fleet, "mover", kHeartbeatMs, {.route = "mover/1b", .number = 1});
  ASSERT_TRUE(eventually(
      [&] { return fleet.broker().log().find("ignored a hello from its connection 1") != std::string::npos; }, wait))
      << fleet.logs();
  auto later = client.submit(job);
  const std::uint64_t third_job = next_dispatch(third, wait);
  ASSERT_NE(third_job, 0u) << fleet.logs();
  answer_ok(third, third_job);
  ASSERT_EQ(later.wait_for(wait), std::future_status::ready) << fleet.logs();
  EXPECT_TRUE(later.get().ok());
  EXPECT_EQ(next_dispatch(stale, std::chrono::milliseconds(100)), 0u);
}

// A Cancel sent on a connection the worker was leaving may never have arrived: a newer connection's
// hello that lists the cancelled job is told again, rather than the worker running it on and being
// declared lost after cancel_grace_ms.
TEST(Failover, ACancelSentOnAWorkersOlderConnectionIsSentAgainOnItsNewOne) {
  Fleet fleet({.workers = 0});
  zmq::context_t context;
  const auto wait = std::chrono::seconds(5);
  zmq::socket_t first = raw_worker(context, fleet, "mover", 20000, {.route = "mover/1", .number = 1});
  ASSERT_TRUE(fleet.wait_for_workers(1));
  Client client(fleet.client_options());
  auto answer = client.submit({.kernel = "sleep", .params = {{"ms", 1}}, .timeout = std::chrono::milliseconds(300)});
  const std::uint64_t dispatch = next_dispatch(first, wait);
  ASSERT_NE(dispatch, 0u) << fleet.logs();
  ASSERT_EQ(answer.wait_for(wait), std::future_status::ready);
  EXPECT_EQ(answer.get().status.code(), StatusCode::kDeadlineExceeded);  // and a Cancel to connection 1, unread
  zmq::socket_t second =
      raw_worker(context, fleet, "mover", 20000, {.route = "mover/2", .number = 2, .running = {dispatch}});
  EXPECT_EQ(next_message(second, wire::Body::Cancel, wait), dispatch) << fleet.logs();
}

// A hello listing jobs the broker does not hold on that worker (it restarted, or declared the worker
// lost meanwhile): those would fill the worker's slots behind the broker's back. The worker is told
// to start over (Reregister) and is not registered until it holds none.
TEST(Failover, AHelloListingJobsTheBrokerDoesNotHoldIsAskedToStartOver) {
  Fleet fleet({.workers = 0});
  zmq::context_t context;
  const auto wait = std::chrono::seconds(5);
  zmq::socket_t worker = raw_worker(context, fleet, "left-over", 20000, {.number = 1, .running = {123456789}});
  EXPECT_EQ(next_message(worker, wire::Body::Reregister, wait), 1u) << fleet.logs();
  EXPECT_FALSE(fleet.wait_for_workers(1, std::chrono::milliseconds(300)));
  zmq::socket_t fresh = raw_worker(context, fleet, "left-over", 20000, {.route = "left-over/2", .number = 2});
  EXPECT_TRUE(fleet.wait_for_workers(1)) << fleet.logs();
}

// One worker per connection: a hello naming another worker on a registered worker's connection ends
// that worker's registration and registers nobody.
TEST(Failover, AHelloForAnotherWorkerOnAWorkersConnectionRegistersNeither) {
  Fleet fleet({.workers = 0});
  zmq::context_t context;
  zmq::socket_t socket = raw_worker(context, fleet, "first", 20000, {.route = "shared", .number = 1});
  ASSERT_TRUE(fleet.wait_for_workers(1));
  flatbuffers::FlatBufferBuilder fbb;
  auto hello =
      wire::CreateWorkerHello(fbb, fbb.CreateString("second"), 1, core::add_device_info(fbb, {}), 0, 1, 20000, 0, 1);
  core::Frames frames;
  frames.push_back(core::finish_envelope(fbb, wire::Body::WorkerHello, hello.Union()));
  ASSERT_TRUE(zmq::send_multipart(socket, frames));
  EXPECT_TRUE(eventually([&] { return fleet.broker().log().find("(one worker per connection)") != std::string::npos; },
                         std::chrono::seconds(5)))
      << fleet.logs();
  EXPECT_TRUE(fleet.wait_for_workers(0)) << fleet.logs();
}

// A worker declared lost after it kept a cancelled job past cancel_grace_ms while it held another:
// each job it held is let go (the cancelled one ends, the other waits for a worker), and the broker
// serves on. (Letting go ended the cancelled job first, whose copy of the worker id the loop read.)
TEST(Failover, AWorkerLostWithACancelledJobAndAnotherLetsBothGo) {
  Fleet fleet({.workers = 0, .broker_yaml_extra = "cancel_grace_ms: 800\n"});
  zmq::context_t context;
  zmq::socket_t silent = raw_worker(context, fleet, "holder", 20000, {.slots = 2});
  ASSERT_TRUE(fleet.wait_for_workers(1));
  Client client(fleet.client_options());
  auto cancelled = client.submit({.kernel = "sleep", .params = {{"ms", 1}}, .timeout = std::chrono::milliseconds(300)});
  auto held = client.submit({.kernel = "sleep", .params = {{"ms", 1}}, .timeout = std::chrono::milliseconds(4000)});
  ASSERT_EQ(cancelled.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  EXPECT_EQ(cancelled.get().status.code(), StatusCode::kDeadlineExceeded);
  ASSERT_TRUE(
      eventually([&] { return fleet.broker().log().find("holder lost (it did not stop job") != std::string::npos; },
                 std::chrono::seconds(5)))
      << fleet.logs();
  ASSERT_EQ(held.wait_for(std::chrono::seconds(10)), std::future_status::ready) << fleet.logs();
  EXPECT_EQ(held.get().status.code(), StatusCode::kDeadlineExceeded);  // no other worker to run it again
  EXPECT_TRUE(fleet.broker().running()) << fleet.broker().log();
  FleetStatus status;
  EXPECT_TRUE(Client(fleet.client_options("operator")).status(status).is_ok());
}

TEST(Shutdown, BrokerDrainsJobsInFlightOnSigterm) {
  FleetOptions options;
  options.workers = 1;
  Fleet fleet(options);
  Client client(fleet.client_options());
  auto running = client.submit({.kernel = "sleep", .params = {{"ms", 300}}});
  ASSERT_TRUE(fleet.wait_for_inflight(1)) << fleet.logs();
  fleet.broker().signal(SIGTERM);
  JobResult r = running.get();
  EXPECT_TRUE(r.ok()) << r.status.to_string();
  EXPECT_EQ(fleet.broker().wait(std::chrono::seconds(5)), 0) << fleet.broker().log();
}

}  // namespace
}  // namespace bridge::testing
