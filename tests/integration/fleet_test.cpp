// A real fleet (redis-server, bridge-broker, two bridge-worker processes) running every kernel.
#include <gtest/gtest.h>

#include <signal.h>

#include <future>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "fleet.hpp"

namespace bridge::testing {
namespace {

Tensor random_vector(std::int64_t n, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-10, 10);
  Tensor t = Tensor::zeros(DType::kF32, {n});
  for (float& v : t.mutable_values<float>()) v = dist(rng);
  return t;
}

class FleetTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { fleet_ = new Fleet(); }
  static void TearDownTestSuite() {
    delete fleet_;
    fleet_ = nullptr;
  }
  void TearDown() override {
    if (HasFailure()) std::cerr << fleet_->logs();
  }
  static Fleet* fleet_;
};
Fleet* FleetTest::fleet_ = nullptr;

TEST_F(FleetTest, StatusShowsBothWorkersWithTheirKernels) {
  Client client(fleet_->client_options());
  FleetStatus fleet;
  ASSERT_TRUE(client.status(fleet).is_ok());
  ASSERT_EQ(fleet.workers.size(), 2u);
  EXPECT_TRUE(fleet.redis_connected);
  EXPECT_EQ(fleet.broker_id, "broker-a");
  for (const auto& w : fleet.workers) {
    EXPECT_EQ(w.device.kind, DeviceKind::kCpu);
    EXPECT_EQ(w.slots, 2u);
    EXPECT_NE(std::find(w.kernels.begin(), w.kernels.end(), "matmul"), w.kernels.end());
    EXPECT_LT(w.since_heartbeat, std::chrono::seconds(2));
  }
}

TEST_F(FleetTest, EveryKernelAnswersCorrectly) {
  Client client(fleet_->client_options());
  Tensor a = random_vector(1000, 1), b = random_vector(1000, 2);

  auto add = client.run({.kernel = "vector_add", .inputs = {a, b}});
  ASSERT_TRUE(add.ok()) << add.status.to_string();
  for (int i = 0; i < 1000; ++i)
    ASSERT_EQ(add.outputs[0].values<float>()[i], a.values<float>()[i] + b.values<float>()[i]);
  EXPECT_FALSE(add.worker_id.empty());
  EXPECT_EQ(add.attempts, 1);
  EXPECT_GT(add.timings.total.count(), 0);

  auto saxpy = client.run({.kernel = "saxpy", .inputs = {a, b}, .params = {{"alpha", 3}}});
  ASSERT_TRUE(saxpy.ok()) << saxpy.status.to_string();
  EXPECT_NEAR(saxpy.outputs[0].values<float>()[7], 3 * a.values<float>()[7] + b.values<float>()[7], 1e-4);

  auto sum = client.run({.kernel = "reduce_sum", .inputs = {a}});
  ASSERT_TRUE(sum.ok());
  double want = 0;
  for (float v : a.values<float>()) want += v;
  EXPECT_NEAR(sum.outputs[0].values<float>()[0], want, 1e-3);

  Tensor m = Tensor::from<float>(std::vector<float>{1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor n = Tensor::from<float>(std::vector<float>{7, 8, 9, 10, 11, 12}, {3, 2});
  auto mm = client.run({.kernel = "matmul", .inputs = {m, n}});
  ASSERT_TRUE(mm.ok());
  EXPECT_EQ(mm.outputs[0].shape(), (Shape{2, 2}));
  const auto c = mm.outputs[0].values<float>();
  EXPECT_EQ(std::vector<float>(c.begin(), c.end()), (std::vector<float>{58, 64, 139, 154}));

  auto soft =
      client.run({.kernel = "softmax", .inputs = {Tensor::from<float>(std::vector<float>{0, 0, 0, 0}, {2, 2})}});
  ASSERT_TRUE(soft.ok());
  for (float v : soft.outputs[0].values<float>()) EXPECT_FLOAT_EQ(v, 0.5f);

  Tensor ints = Tensor::vector<std::int64_t>({-1, 1ll << 40}, "ids");
  auto pass = client.run({.kernel = "passthrough", .inputs = {ints}});
  ASSERT_TRUE(pass.ok());
  EXPECT_EQ(pass.outputs[0].name(), "ids");
  EXPECT_EQ(pass.outputs[0].values<std::int64_t>()[1], 1ll << 40);
}

TEST_F(FleetTest, LargeTensorsRoundTripIntact) {
  Client client(fleet_->client_options());
  Tensor big = random_vector(4 << 20, 3);  // 16 MiB
  auto result = client.run({.kernel = "passthrough", .inputs = {big}});
  ASSERT_TRUE(result.ok()) << result.status.to_string();
  ASSERT_EQ(result.outputs[0].byte_size(), big.byte_size());
  EXPECT_EQ(std::memcmp(result.outputs[0].bytes().data(), big.bytes().data(), big.byte_size()), 0);
}

TEST_F(FleetTest, ManyJobsFromManyThreadsEachGetTheirOwnAnswer) {
  Client client(fleet_->client_options());
  constexpr int kThreads = 4, kJobsPerThread = 250;
  std::atomic<int> correct{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::vector<std::pair<float, std::future<JobResult>>> futures;
      for (int j = 0; j < kJobsPerThread; ++j) {
        const float x = static_cast<float>(t * 1000 + j);
        futures.emplace_back(x, client.submit({.kernel = "vector_add",
                                               .inputs = {Tensor::vector<float>({x}), Tensor::vector<float>({1})}}));
      }
      for (auto& [x, f] : futures) {
        JobResult r = f.get();
        if (r.ok() && r.outputs[0].values<float>()[0] == x + 1) ++correct;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(correct.load(), kThreads * kJobsPerThread);
}

TEST_F(FleetTest, JobsSubmittedUnderBatchedSendsGoOutTogetherWhenItEnds) {
  Client client(fleet_->client_options());
  std::vector<std::future<JobResult>> futures;
  {
    Client::BatchedSends together(client);
    for (int j = 0; j < 20; ++j)
      futures.push_back(client.submit(
          {.kernel = "vector_add", .inputs = {Tensor::vector<float>({float(j)}), Tensor::vector<float>({1})}}));
    // Held: nothing has left this process, so nothing can have been answered.
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    for (auto& f : futures) EXPECT_EQ(f.wait_for(std::chrono::seconds(0)), std::future_status::timeout);
  }
  for (int j = 0; j < 20; ++j) {
    JobResult r = futures[j].get();
    ASSERT_TRUE(r.ok()) << r.status.to_string();
    EXPECT_EQ(r.outputs[0].values<float>()[0], float(j) + 1);
  }
  // run() and status() send what this thread holds before they wait; send_now() by hand.
  {
    Client::BatchedSends together(client);
    auto held = client.submit({.kernel = "sleep", .params = {{"ms", 1}}});
    EXPECT_TRUE(client.run({.kernel = "sleep", .params = {{"ms", 1}}}).ok());
    EXPECT_TRUE(held.get().ok());
    auto again = client.submit({.kernel = "sleep", .params = {{"ms", 1}}});
    together.send_now();
    EXPECT_TRUE(again.get().ok());
  }
  // Another thread's job is not held by this thread's scope.
  Client::BatchedSends held(client);
  JobResult other = std::async(std::launch::async, [&] {
                      return client.run({.kernel = "vector_add",
                                         .inputs = {Tensor::vector<float>({1}), Tensor::vector<float>({1})}});
                    }).get();
  EXPECT_TRUE(other.ok()) << other.status.to_string();
}

TEST_F(FleetTest, AfterCallbacksRunsOnTheIoThreadAfterTheCallbacksOfItsWakeUp) {
  std::mutex mutex;
  std::vector<std::string> events;  // "callback" and "after", in order, from the I/O thread
  std::thread::id callback_thread, hook_thread;
  Client::Options options = fleet_->client_options();
  options.after_callbacks = [&] {
    std::lock_guard lock(mutex);
    hook_thread = std::this_thread::get_id();
    if (!events.empty() && events.back() == "callback") events.push_back("after");
  };
  Client client(options);
  std::promise<void> answered;
  client.submit({.kernel = "vector_add", .inputs = {Tensor::vector<float>({1}), Tensor::vector<float>({1})}},
                [&](JobResult) {
                  std::lock_guard lock(mutex);
                  callback_thread = std::this_thread::get_id();
                  events.push_back("callback");
                  answered.set_value();
                });
  answered.get_future().wait();
  ASSERT_TRUE(eventually([&] {
    std::lock_guard lock(mutex);
    return events.size() == 2;
  }, std::chrono::seconds(10)));
  std::lock_guard lock(mutex);
  EXPECT_EQ(events, (std::vector<std::string>{"callback", "after"}));
  EXPECT_EQ(callback_thread, hook_thread);
  EXPECT_NE(callback_thread, std::this_thread::get_id());
}

TEST_F(FleetTest, JobsAreSpreadOverWorkers) {
  Client client(fleet_->client_options());
  std::vector<std::future<JobResult>> futures;
  for (int i = 0; i < 8; ++i) futures.push_back(client.submit({.kernel = "sleep", .params = {{"ms", 50}}}));
  std::set<std::string> workers;
  for (auto& f : futures) {
    JobResult r = f.get();
    ASSERT_TRUE(r.ok()) << r.status.to_string();
    workers.insert(r.worker_id);
  }
  EXPECT_EQ(workers.size(), 2u);
}

TEST_F(FleetTest, NeverMoreJobsInFlightOnAWorkerThanItsSlots) {
  Client client(fleet_->client_options());
  std::vector<std::future<JobResult>> futures;
  for (int i = 0; i < 12; ++i) futures.push_back(client.submit({.kernel = "sleep", .params = {{"ms", 150}}}));
  bool saw_queue = false;
  for (int probe = 0; probe < 20; ++probe) {
    FleetStatus fleet;
    ASSERT_TRUE(client.status(fleet).is_ok());
    for (const auto& w : fleet.workers) EXPECT_LE(w.inflight, w.slots) << w.id;
    saw_queue |= fleet.queued_jobs > 0;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_TRUE(saw_queue) << "12 jobs on 4 slots should have waited in the broker";
  for (auto& f : futures) EXPECT_TRUE(f.get().ok());
}

TEST_F(FleetTest, FleetViewIsPublishedInRedis) {
  EXPECT_EQ(fleet_->redis().command({"SCARD", "bridge:workers"}), "2");
  EXPECT_EQ(fleet_->redis().command({"HGET", "bridge:worker:worker-0", "device_kind"}), "cpu");
  EXPECT_EQ(fleet_->redis().command({"HGET", "bridge:worker:worker-0", "broker"}), "broker-a");
}

TEST(FleetStartup, JobSentBeforeAnyWorkerRunsOnceOneJoins) {
  FleetOptions options;
  options.workers = 0;
  Fleet fleet(options);
  Client client(fleet.client_options());
  auto future =
      client.submit({.kernel = "vector_add", .inputs = {Tensor::vector<float>({1}), Tensor::vector<float>({2})}});
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  fleet.add_worker(1);
  JobResult r = future.get();
  ASSERT_TRUE(r.ok()) << r.status.to_string() << fleet.logs();
  EXPECT_EQ(r.outputs[0].values<float>()[0], 3.0f);
  EXPECT_GE(r.timings.queued, std::chrono::milliseconds(150));
}

TEST(FleetStartup, JobWithNoWorkerInTimeIsAnsweredDeadlineExceeded) {
  FleetOptions options;
  options.workers = 0;
  Fleet fleet(options);
  Client client(fleet.client_options());
  JobResult r = client.run({.kernel = "vector_add", .inputs = {}, .timeout = std::chrono::milliseconds(300)});
  EXPECT_EQ(r.status.code(), StatusCode::kDeadlineExceeded) << r.status.to_string();
  EXPECT_NE(r.status.message().find("joined"), std::string::npos) << r.status.message();
}

TEST(FleetStartup, AutoDeviceServesOnTheCpuWhenNoGpuIsUsableAndSaysWhy) {
  FleetOptions options;
  options.workers = 1;
  options.worker_device = "auto";
  Fleet fleet(options);
  Client client(fleet.client_options());
  FleetStatus status;
  ASSERT_TRUE(client.status(status).is_ok());
  ASSERT_EQ(status.workers.size(), 1u);
  const std::string log = fleet.worker(0).log();
  if (status.workers[0].device.kind == DeviceKind::kCuda) {
    EXPECT_NE(log.find("CUDA backend: device 0"), std::string::npos) << log;  // a machine with a GPU
  } else {
    EXPECT_NE(log.find("no usable CUDA device ("), std::string::npos) << log;
    JobResult r =
        client.run({.kernel = "vector_add", .inputs = {Tensor::vector<float>({1}), Tensor::vector<float>({2})}});
    EXPECT_TRUE(r.ok()) << r.status.to_string();
    EXPECT_EQ(r.device_kind, DeviceKind::kCpu);
  }
}

TEST(ClientAlone, NoBrokerMeansDeadlineExceededNotAHang) {
  Client client({.broker = tcp_endpoint(free_port()), .timeout = std::chrono::milliseconds(200)});
  JobResult r = client.run({.kernel = "passthrough"});
  EXPECT_EQ(r.status.code(), StatusCode::kDeadlineExceeded);
  FleetStatus fleet;
  EXPECT_EQ(client.status(fleet).code(), StatusCode::kDeadlineExceeded);
}

TEST(ClientAlone, PendingJobsAreCancelledWhenTheClientCloses) {
  std::future<JobResult> pending;
  {
    Client client({.broker = tcp_endpoint(free_port()), .timeout = std::chrono::seconds(60)});
    pending = client.submit({.kernel = "passthrough"});
  }
  EXPECT_EQ(pending.get().status.code(), StatusCode::kCancelled);
}

// A callback that holds the last reference to its Client: destroying it there used to end the
// process (std::thread joined from itself). The Client's other pending job is answered CANCELLED.
TEST(ClientAlone, AClientDestroyedInItsOwnCallbackShutsDownCleanly) {
  auto client = std::make_shared<Client>(
      Client::Options{.broker = tcp_endpoint(free_port()), .timeout = std::chrono::milliseconds(300)});
  std::future<JobResult> other = client->submit({.kernel = "passthrough", .timeout = std::chrono::seconds(60)});
  std::promise<StatusCode> first;
  std::weak_ptr<Client> watch = client;
  client->submit({.kernel = "passthrough"}, [keep = client, &first](JobResult r) mutable {
    first.set_value(r.status.code());
    keep.reset();  // the last reference: ~Client runs here, on the client's own I/O thread
  });
  client.reset();
  EXPECT_EQ(first.get_future().get(), StatusCode::kDeadlineExceeded);  // no broker: its 300 ms ran out
  EXPECT_EQ(other.get().status.code(), StatusCode::kCancelled);
  EXPECT_TRUE(watch.expired());
}

// close() answers every pending job CANCELLED at once, and the broker stops them: the workers'
// slots and the tenant's quota come back long before the jobs' 20 s would have ended.
TEST(ClientClose, AnswersPendingJobsCancelledAndStopsThemInTheFleet) {
  Fleet fleet({.workers = 1, .slots = 2});
  Client ops(fleet.client_options("operator"));
  const auto inflight = [&] {
    QuotaReport report;
    return ops.quotas("default", report).is_ok() && !report.tenants.empty() ? report.tenants[0].inflight_jobs : -1;
  };
  Client client(fleet.client_options());
  std::vector<std::future<JobResult>> pending;
  for (int i = 0; i < 10; ++i)
    pending.push_back(client.submit(
        {.kernel = "sleep", .params = {{"ms", 20000}}, .timeout = std::chrono::milliseconds(30000)}));
  ASSERT_TRUE(eventually([&] { return inflight() >= 10; }, std::chrono::seconds(10))) << inflight();
  client.close();
  for (auto& f : pending) {
    ASSERT_EQ(f.wait_for(std::chrono::seconds(0)), std::future_status::ready) << "close() returned before answering";
    EXPECT_EQ(f.get().status.code(), StatusCode::kCancelled);
  }
  EXPECT_TRUE(eventually([&] { return inflight() == 0; }, std::chrono::seconds(10))) << inflight();
  EXPECT_EQ(client.run({.kernel = "sleep", .params = {{"ms", 1}}}).status.code(), StatusCode::kCancelled);
  client.close();  // again: nothing happens
  // The fleet serves the tenant again at once.
  EXPECT_TRUE(Client(fleet.client_options()).run({.kernel = "sleep", .params = {{"ms", 1}}}).ok());
}

// The jobs in flight on a fleet's only worker, as the broker reports them; -1 if it does not.
int only_worker_inflight(Client& client) {
  FleetStatus status;
  return client.status(status).is_ok() && status.workers.size() == 1 ? static_cast<int>(status.workers[0].inflight)
                                                                     : -1;
}

// prefetch: the broker sends a worker jobs beyond its slots; they wait on the worker, which still runs
// only `slots` at once, and start there as soon as one frees.
TEST(Prefetch, JobsBeyondTheSlotsWaitOnTheWorkerWhichRunsOnlyItsSlotsAtOnce) {
  Fleet fleet({.workers = 1, .slots = 1, .worker_yaml_extra = "prefetch: 1\n"});
  Client client(fleet.client_options());
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::future<JobResult>> futures;
  for (int i = 0; i < 3; ++i) futures.push_back(client.submit({.kernel = "sleep", .params = {{"ms", 800}}}));
  FleetStatus status;
  // While the first runs: one on the worker's slot, one waiting there, one in the broker.
  EXPECT_TRUE(eventually(
      [&] {
        return client.status(status).is_ok() && status.workers.size() == 1 && status.workers[0].inflight == 2 &&
               status.queued_jobs == 1;
      },
      std::chrono::seconds(5)));
  ASSERT_EQ(status.workers.size(), 1u);
  EXPECT_EQ(status.workers[0].slots, 1u);
  EXPECT_EQ(status.workers[0].prefetch, 1u);
  for (auto& f : futures) EXPECT_TRUE(f.get().ok());
  // One slot: the three ran one after another (on the CPU's threads, without the worker's own
  // limit, the two sent together would have run side by side: about 1.6 s in all).
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(2300));
}

// A job cancelled while it waits on a worker is answered there at once: its place frees for the
// next job without waiting for the slot, and it never runs.
TEST(Prefetch, AJobCancelledWhileItWaitsOnTheWorkerFreesItsPlaceAtOnce) {
  Fleet fleet({.workers = 1, .slots = 1, .worker_yaml_extra = "prefetch: 1\n"});
  Client client(fleet.client_options());
  const JobRequest long_job{.kernel = "sleep", .params = {{"ms", 20000}}, .timeout = std::chrono::milliseconds(30000)};
  std::promise<JobResult> first, second;
  const std::uint64_t running = client.submit(long_job, [&](JobResult r) { first.set_value(std::move(r)); });
  const std::uint64_t waiting = client.submit(long_job, [&](JobResult r) { second.set_value(std::move(r)); });
  const auto worker_inflight = [&] { return only_worker_inflight(client); };
  ASSERT_TRUE(eventually([&] { return worker_inflight() == 2; }, std::chrono::seconds(5))) << worker_inflight();
  client.cancel(waiting);
  EXPECT_EQ(second.get_future().get().status.code(), StatusCode::kCancelled);
  EXPECT_TRUE(eventually([&] { return worker_inflight() == 1; }, std::chrono::seconds(3))) << worker_inflight();
  client.cancel(running);
  EXPECT_EQ(first.get_future().get().status.code(), StatusCode::kCancelled);
  EXPECT_TRUE(eventually([&] { return worker_inflight() == 0; }, std::chrono::seconds(3))) << worker_inflight();
}

// A prefetched job's max_job_ms counts from its start, not from its dispatch: two 400 ms jobs on one
// slot under a 600 ms max_job_ms both finish (the second waited 400 ms on the worker first), and a
// job longer than that is still stopped.
TEST(Prefetch, MaxJobMsCountsFromTheStartNotTheWaitOnTheWorker) {
  Fleet fleet({.workers = 1,
               .slots = 1,
               .tenants_yaml = "defaults:\n  max_inflight_jobs: 1000\n  max_job_ms: 600\ntenants:\n  default: {}\n",
               .worker_yaml_extra = "prefetch: 1\n"});
  Client client(fleet.client_options());
  auto first = client.submit({.kernel = "sleep", .params = {{"ms", 400}}});
  auto second = client.submit({.kernel = "sleep", .params = {{"ms", 400}}});
  const JobResult a = first.get(), b = second.get();
  EXPECT_TRUE(a.ok()) << a.status.to_string();
  EXPECT_TRUE(b.ok()) << b.status.to_string();
  const JobResult too_long = client.run({.kernel = "sleep", .params = {{"ms", 5000}}});
  EXPECT_EQ(too_long.status.code(), StatusCode::kDeadlineExceeded) << too_long.status.to_string();
}

// A batch waiting on the worker loses the member whose deadline passed, which is answered at once
// (the broker waits for that answer to free its credit, and declares a worker that holds a stopped
// job past cancel_grace_ms lost); the other member waits on and runs.
TEST(Prefetch, AStoppedMemberOfAWaitingBatchIsAnsweredAtOnceAndTheRestRuns) {
  Fleet fleet({.workers = 1,
               .slots = 1,
               .broker_yaml_extra = "cancel_grace_ms: 1000\n",
               .worker_yaml_extra = "prefetch: 4\nmax_delay_us: 300000\n"});
  Client client(fleet.client_options());
  auto blocker = client.submit({.kernel = "sleep", .params = {{"ms", 3000}}});
  // 96 KiB a job: more than a CPU worker runs on its socket thread, where nothing waits for company.
  const Tensor a = random_vector(8192, 1), b = random_vector(8192, 2);
  std::future<JobResult> short_lived, patient;
  {
    Client::BatchedSends together(client);  // one socket read on the worker: one batch
    short_lived = client.submit({.kernel = "vector_add", .inputs = {a, b}, .timeout = std::chrono::milliseconds(500)});
    patient = client.submit({.kernel = "vector_add", .inputs = {a, b}, .timeout = std::chrono::milliseconds(30000)});
  }
  EXPECT_EQ(short_lived.get().status.code(), StatusCode::kDeadlineExceeded);
  const JobResult first = blocker.get(), second = patient.get();
  EXPECT_TRUE(first.ok()) << first.status.to_string();
  EXPECT_EQ(first.attempts, 1) << "the worker was declared lost and the job ran again";
  ASSERT_TRUE(second.ok()) << second.status.to_string();
  EXPECT_EQ(second.attempts, 1);
  const auto sum = second.outputs.at(0).values<float>();
  for (std::size_t i = 0; i < sum.size(); ++i) EXPECT_EQ(sum[i], a.values<float>()[i] + b.values<float>()[i]);
  EXPECT_EQ(fleet.logs().find("lost"), std::string::npos);
}

// SIGTERM: past drain_timeout_ms the worker exits; the jobs waiting there never start, and the
// running one is stopped (the broker runs them all again elsewhere).
TEST(Prefetch, AWorkerStoppedPastItsDrainTimeoutStartsNoWaitingJob) {
  Fleet fleet({.workers = 1, .slots = 1, .worker_yaml_extra = "prefetch: 4\ndrain_timeout_ms: 500\n"});
  Client client(fleet.client_options());
  std::vector<std::future<JobResult>> jobs;
  for (int i = 0; i < 5; ++i)
    jobs.push_back(client.submit({.kernel = "sleep", .params = {{"ms", 3000}}, .timeout = std::chrono::seconds(60)}));
  const auto worker_inflight = [&] { return only_worker_inflight(client); };
  ASSERT_TRUE(eventually([&] { return worker_inflight() == 5; }, std::chrono::seconds(5))) << worker_inflight();
  const auto stopped_at = std::chrono::steady_clock::now();
  fleet.worker(0).signal(SIGTERM);
  EXPECT_TRUE(eventually([&] { return !fleet.worker(0).running(); }, std::chrono::seconds(4)))
      << "the worker ran its waiting jobs before it exited";
  EXPECT_LT(std::chrono::steady_clock::now() - stopped_at, std::chrono::seconds(4));
}

// Jobs cancelled while they wait for company in the worker's batcher: each is answered CANCELLED by
// the worker, with its own reason, not with its batch's status (the batch ran and each was answered
// OK before). The batch itself is stopped too, which nothing here can see: it is too quick to catch.
TEST(Batching, JobsCancelledInTheBatcherAreAnsweredCancelledByTheWorker) {
  Fleet fleet({.workers = 1, .slots = 2, .worker_yaml_extra = "max_delay_us: 1000000\n"});
  Client client(fleet.client_options());
  // 96 KiB a job: more than a CPU worker runs on its socket thread, where nothing waits for company.
  const Tensor a = random_vector(8192, 1), b = random_vector(8192, 2);
  std::vector<std::uint64_t> ids;
  {
    Client::BatchedSends together(client);
    for (int i = 0; i < 2; ++i)
      ids.push_back(client.submit({.kernel = "vector_add", .inputs = {a, b}}, [](JobResult) {}));
  }
  ASSERT_TRUE(eventually([&] { return only_worker_inflight(client) == 2; }, std::chrono::seconds(5)));
  for (const std::uint64_t id : ids) client.cancel(id);
  const auto worker_cancelled = [&] {
    const std::string logs = fleet.logs();
    std::size_t count = 0;
    for (std::size_t at = logs.find("failed: CANCELLED"); at != std::string::npos;
         at = logs.find("failed: CANCELLED", at + 1))
      ++count;
    return count;
  };
  EXPECT_TRUE(eventually([&] { return worker_cancelled() == 2; }, std::chrono::seconds(5))) << fleet.logs();
}

}  // namespace
}  // namespace bridge::testing
