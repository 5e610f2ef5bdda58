// A job has one owner in the broker, and whatever ends it gives back what it holds exactly once: a
// careless or hostile tenant cannot take worker slots, memory or time it was not granted (issue 13).
#include <gtest/gtest.h>

#include <atomic>
#include <csignal>
#include <future>
#include <map>
#include <thread>

#include <zmq_addon.hpp>

#include "bridge/core/job_codec.hpp"
#include "fleet.hpp"
#include "http_metrics.hpp"

namespace bridge::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

long long ms_since(steady_clock::time_point start) {
  return std::chrono::duration_cast<milliseconds>(steady_clock::now() - start).count();
}

JobRequest sleep_job(double ms, milliseconds timeout, const std::string& tenant = "") {
  return {.kernel = "sleep", .params = {{"ms", ms}}, .tenant = tenant, .timeout = timeout};
}

// 8200 x 0 times 0 x 8200: nothing to send, 269 MB to allocate for the result.
TEST(JobOwnership, AnOutputOverTheLimitIsTooLargeBeforeAnyMemoryIsTouchedAndFreesTheSlot) {
  Fleet fleet({.workers = 2, .slots = 2});
  Client client(fleet.client_options());
  std::vector<std::future<JobResult>> refused;
  for (int i = 0; i < 8; ++i)  // twice the fleet's slots: none may stay taken
    refused.push_back(
        client.submit({.kernel = "matmul",
                       .inputs = {Tensor::zeros(DType::kF32, {8200, 0}), Tensor::zeros(DType::kF32, {0, 8200})},
                       .timeout = milliseconds(5000)}));
  for (auto& f : refused) {
    JobResult r = f.get();
    EXPECT_EQ(r.status.code(), StatusCode::kTooLarge) << r.status.to_string();
    EXPECT_NE(r.status.message().find("268960000 bytes"), std::string::npos) << r.status.message();
    EXPECT_NE(r.status.message().find("max_tensor_bytes"), std::string::npos) << r.status.message();
  }
  EXPECT_TRUE(fleet.wait_for_inflight(0)) << fleet.logs();
  std::vector<std::future<JobResult>> after;
  for (int i = 0; i < 4; ++i) after.push_back(client.submit(sleep_job(50, milliseconds(3000))));
  for (auto& f : after) EXPECT_TRUE(f.get().ok());
}

// Sixteen resizes to 4100x4100 from one pixel: 4 bytes sent, just over 1 GiB of outputs asked for.
TEST(JobOwnership, AnExpandingPipelineIsRefusedBeforeAllocationAndNoWorkerIsLost) {
  Fleet fleet({.workers = 2, .slots = 2});
  Client client(fleet.client_options());
  Pipeline pipeline;
  for (int i = 0; i < 16; ++i) pipeline.then("resize", {{"height", 4100}, {"width", 4100}});
  const auto start = steady_clock::now();
  JobResult r = client.run(pipeline.request({Tensor::from<float>(std::vector<float>{1.f}, {1, 1})}));
  EXPECT_EQ(r.status.code(), StatusCode::kTooLarge) << r.status.to_string();
  EXPECT_NE(r.status.message().find("max_job_bytes of 1073741824"), std::string::npos) << r.status.message();
  EXPECT_NE(r.status.message().find("pipeline step 16 of 16"), std::string::npos) << r.status.message();
  EXPECT_LT(ms_since(start), 1000) << "refused late: memory was touched";
  // A bystander is served at once, and both workers are still there a few heartbeats later.
  EXPECT_TRUE(client.run(sleep_job(1, milliseconds(2000))).ok());
  std::this_thread::sleep_for(milliseconds(600));
  FleetStatus status;
  ASSERT_TRUE(client.status(status).is_ok());
  EXPECT_EQ(status.workers.size(), 2u) << fleet.logs();
}

// Half a GiB of outputs within the limits: set up and computed off the worker's socket thread, so its
// heartbeats go out on time and the broker does not declare it lost. Freeing the intermediates is
// the backend's work too. Liveness is 600 ms here: a socket thread doing the job's O(bytes) work
// stalls for seconds, while a loaded 2-core CI machine can delay any thread by a few hundred ms.
// The 64 MiB result, encrypted and decrypted whole by CURVE, holds up the heartbeats behind it for
// longer than that on a loaded machine: the worker announces it, and the broker waits for it.
TEST(JobOwnership, AJobWithLargeOutputsLeavesTheWorkersHeartbeatOnTime) {
  Fleet fleet({.workers = 1, .slots = 2, .heartbeat_ms = 200});
  Client client(fleet.client_options());
  Pipeline pipeline;
  for (int i = 0; i < 8; ++i) pipeline.then("resize", {{"height", 4096}, {"width", 4096}});
  JobRequest request = pipeline.request({Tensor::from<float>(std::vector<float>{1.f}, {1, 1})});
  request.timeout = milliseconds(120000);  // the subject is liveness; a sanitized build on a busy machine is slow
  auto big = client.submit(std::move(request));
  std::this_thread::sleep_for(milliseconds(100));
  EXPECT_TRUE(client.run(sleep_job(1, milliseconds(5000))).ok()) << "the other slot was not served";
  // Within ctest's 120 s for this test, so that a stall fails here with the fleet's logs.
  ASSERT_EQ(big.wait_for(std::chrono::seconds(100)), std::future_status::ready) << "no answer" << fleet.logs();
  JobResult r = big.get();
  ASSERT_TRUE(r.ok()) << r.status.to_string() << fleet.logs();
  ASSERT_EQ(r.outputs.size(), 1u);
  EXPECT_EQ(r.outputs[0].shape(), (Shape{4096, 4096}));
  EXPECT_EQ(r.attempts, 1) << "the worker was declared lost and the job sent again";
  EXPECT_EQ(fleet.broker().log().find("lost"), std::string::npos) << fleet.broker().log();
}

// A tenant allowed 4 jobs in flight sends jobs that run far past their deadlines. The deadline
// answers the client, but the tenant keeps the slot until its worker has stopped the job, so it can
// never hold more than 4 of the fleet's 8 slots, and other tenants keep being served.
TEST(JobOwnership, JobsPastTheirDeadlineAreStoppedOnTheirWorkersSoATenantNeverHoldsMoreSlotsThanGranted) {
  FleetOptions options;
  options.workers = 2;
  options.slots = 4;
  options.tenants_yaml = "tenants:\n  default: {}\n  greedy:\n    max_inflight_jobs: 4\n";
  Fleet fleet(options);
  Client::Options greedy_options = fleet.client_options("greedy");
  greedy_options.retry.max_attempts = 50;  // keeps re-filling its quota as soon as it can
  greedy_options.retry.initial_backoff = milliseconds(5);
  Client greedy(greedy_options);
  Client steady(fleet.client_options());

  std::atomic<bool> watching{true};
  std::atomic<std::uint32_t> most_inflight{0};
  std::thread watcher([&] {
    Client observer(fleet.client_options());
    while (watching) {
      FleetStatus status;
      if (observer.status(status).is_ok()) most_inflight = std::max(most_inflight.load(), status.inflight_jobs);
      std::this_thread::sleep_for(milliseconds(20));
    }
  });
  std::vector<std::future<JobResult>> greedy_jobs;
  for (int i = 0; i < 12; ++i) greedy_jobs.push_back(greedy.submit(sleep_job(60000, milliseconds(600))));
  for (int i = 0; i < 10; ++i) {
    JobResult r = steady.run(sleep_job(20, milliseconds(2000)));
    EXPECT_TRUE(r.ok()) << "the steady tenant was not served: " << r.status.to_string();
  }
  for (auto& f : greedy_jobs) {
    JobResult r = f.get();
    EXPECT_TRUE(r.status.code() == StatusCode::kDeadlineExceeded || r.status.code() == StatusCode::kResourceExhausted)
        << r.status.to_string();
  }
  EXPECT_TRUE(fleet.wait_for_inflight(0, std::chrono::seconds(3))) << "a stopped job still holds its slot";
  watching = false;
  watcher.join();
  EXPECT_LE(most_inflight.load(), 4u + 1u) << "greedy (4 granted) plus one steady job at most";
  EXPECT_TRUE(
      eventually([&] { return fleet.redis().hash_total("bridge:inflight:greedy") == "0"; }, std::chrono::seconds(3)));
}

TEST(JobOwnership, ADeadlinePassedWhileRunningIsAnsweredOnTimeAndNothingIsForwardedAfter) {
  Fleet fleet({.workers = 1, .slots = 1});
  Client client(fleet.client_options());
  const auto start = steady_clock::now();
  JobResult r = client.run(sleep_job(3000, milliseconds(400)));
  const long long took = ms_since(start);
  EXPECT_EQ(r.status.code(), StatusCode::kDeadlineExceeded) << r.status.to_string();
  EXPECT_NE(r.status.message().find("past its deadline of 400 ms"), std::string::npos) << r.status.message();
  // The broker answers within its 10 ms tick; the margin is for a loaded 2-core machine.
  EXPECT_LT(took, 400 + 250) << "answered " << took - 400 << " ms after the deadline";
  // The worker stopped the sleep: its one slot takes the next job at once, not after 3 s.
  const auto next = steady_clock::now();
  EXPECT_TRUE(client.run(sleep_job(1, milliseconds(2000))).ok());
  EXPECT_LT(ms_since(next), 1500) << "the slot stayed taken by the stopped job";
}

TEST(JobOwnership, MaxJobMsStopsAJobWhateverTimeoutTheClientAsked) {
  FleetOptions options;
  options.workers = 1;
  options.tenants_yaml = "tenants:\n  default:\n    max_job_ms: 200\n";
  Fleet fleet(options);
  Client client(fleet.client_options());
  const auto start = steady_clock::now();
  JobResult r = client.run(sleep_job(5000, milliseconds(10000)));
  EXPECT_EQ(r.status.code(), StatusCode::kDeadlineExceeded) << r.status.to_string();
  EXPECT_NE(r.status.message().find("max_job_ms 200"), std::string::npos) << r.status.message() << fleet.logs();
  EXPECT_LT(ms_since(start), 1500);
  EXPECT_TRUE(fleet.wait_for_inflight(0, std::chrono::seconds(2)));
  QuotaReport report;
  ASSERT_TRUE(client.quotas("default", report).is_ok());
  ASSERT_EQ(report.tenants.size(), 1u);
  EXPECT_EQ(report.tenants[0].max_job_ms, 200u);
}

TEST(JobOwnership, ACancelledJobIsAnsweredAtOnceNeverRunsIfWaitingAndFreesItsSlotIfRunning) {
  Fleet fleet({.workers = 1, .slots = 1});
  Client client(fleet.client_options());
  std::promise<JobResult> running_result, queued_result;
  const std::uint64_t running = client.submit(sleep_job(30000, milliseconds(60000)),
                                              [&](JobResult r) { running_result.set_value(std::move(r)); });
  ASSERT_TRUE(fleet.wait_for_inflight(1));
  const std::uint64_t queued = client.submit(sleep_job(30000, milliseconds(60000)),
                                             [&](JobResult r) { queued_result.set_value(std::move(r)); });
  std::this_thread::sleep_for(milliseconds(100));  // let it reach the broker's queue
  client.cancel(queued);
  auto queued_answer = queued_result.get_future();
  ASSERT_EQ(queued_answer.wait_for(std::chrono::seconds(1)), std::future_status::ready);
  EXPECT_EQ(queued_answer.get().status.code(), StatusCode::kCancelled);

  const auto start = steady_clock::now();
  client.cancel(running);
  auto running_answer = running_result.get_future();
  ASSERT_EQ(running_answer.wait_for(std::chrono::seconds(1)), std::future_status::ready);
  EXPECT_EQ(running_answer.get().status.code(), StatusCode::kCancelled);
  // The worker stopped it: the slot is free long before the 30 s sleep would have ended.
  EXPECT_TRUE(fleet.wait_for_inflight(0, std::chrono::seconds(2))) << fleet.logs();
  EXPECT_LT(ms_since(start), 2000);
  EXPECT_TRUE(
      eventually([&] { return fleet.redis().hash_total("bridge:inflight:default") == "0"; }, std::chrono::seconds(2)));
  // The cancelled queued job never ran: the one slot serves the next job at once.
  EXPECT_TRUE(client.run(sleep_job(1, milliseconds(2000))).ok());
  client.cancel(running);  // an answered id is ignored
  client.cancel(123456);   // and so is an unknown one
  EXPECT_TRUE(client.run(sleep_job(1, milliseconds(2000))).ok());
}

TEST(JobOwnership, CtrlCOnBridgectlSubmitCancelsTheJobAndFreesItsSlot) {
  Fleet fleet({.workers = 1, .slots = 1});
  Process submit({BRIDGE_TEST_BRIDGECTL_BIN, "--broker", fleet.frontend(), "--key-file", fleet.key_file("default"),
                  "--broker-key-file", fleet.broker_public_key_file(), "submit", "sleep", "--param", "ms=30000"},
                 (fleet.dir().path() / "submit.txt").string());
  ASSERT_TRUE(fleet.wait_for_inflight(1)) << submit.log();
  submit.signal(SIGINT);
  EXPECT_EQ(submit.wait(std::chrono::seconds(3)), 1) << submit.log();
  EXPECT_NE(submit.log().find("CANCELLED"), std::string::npos) << submit.log();
  EXPECT_TRUE(fleet.wait_for_inflight(0, std::chrono::seconds(2))) << "the job still runs on its worker";
}

// A job answered at its deadline while its worker was frozen; the worker then restarts under its id.
// The new process never gets the answered job again: its one slot serves the next job at once.
TEST(JobOwnership, AnAnsweredJobIsNotSentAgainWhenItsWorkerRestarts) {
  FleetOptions options;
  options.workers = 1;
  options.slots = 1;
  options.heartbeat_ms = 500;  // liveness 1.5 s: the restart comes well before the worker is declared lost
  Fleet fleet(options);
  Client client(fleet.client_options());
  auto frozen = client.submit(sleep_job(10000, milliseconds(600)));
  ASSERT_TRUE(fleet.wait_for_inflight(1));
  fleet.worker(0).signal(SIGSTOP);  // neither the Cancel nor a result gets through
  JobResult r = frozen.get();
  EXPECT_EQ(r.status.code(), StatusCode::kDeadlineExceeded) << r.status.to_string();
  fleet.restart_worker(0, 1);
  ASSERT_TRUE(
      eventually([&] { return fleet.broker().log().find("worker worker-0 re-registered") != std::string::npos; },
                 std::chrono::seconds(5)))
      << fleet.logs();
  const auto start = steady_clock::now();
  JobResult next = client.run(sleep_job(1, milliseconds(3000)));
  EXPECT_TRUE(next.ok()) << next.status.to_string() << "\n" << fleet.logs();
  EXPECT_LT(ms_since(start), 1500) << "the restarted worker's slot was taken by the answered job";
  EXPECT_TRUE(
      eventually([&] { return fleet.redis().hash_total("bridge:inflight:default") == "0"; }, std::chrono::seconds(3)));
}

// The broker's leases in Redis are named for its process, not only its id: a broker killed -9 and
// started again under the same --id does not count the dead process's leases as its own.
TEST(JobOwnership, ABrokerRestartedUnderItsIdDoesNotInheritTheDeadProcesssLeases) {
  FleetOptions options;
  options.workers = 2;
  options.tenants_yaml = "tenants:\n  default:\n    max_inflight_jobs: 1\n";
  Fleet fleet(options);
  {
    Client::Options o = fleet.client_options();
    o.broker_check = milliseconds(0);  // this client must not re-send the job to the new broker
    Client holder(o);
    holder.submit(sleep_job(20000, milliseconds(30000)), [](JobResult) {});
    ASSERT_TRUE(fleet.wait_for_inflight(1));
    EXPECT_EQ(fleet.redis().hash_total("bridge:inflight:default"), "1");
    fleet.restart_broker();
  }
  Client::Options o = fleet.client_options();
  o.retry.max_attempts = 100;
  o.retry.max_backoff = milliseconds(200);
  Client client(o);
  // The dead process's liveness key lives heartbeat_ms x liveness (300 ms here); then its lease goes.
  const auto start = steady_clock::now();
  JobResult r = client.run(sleep_job(1, milliseconds(8000)));
  EXPECT_TRUE(r.ok()) << r.status.to_string() << "\n" << fleet.logs();
  EXPECT_LT(ms_since(start), 5000);
}


// A client that sends jobs with 4 MiB results and never reads: a raw socket whose receive side
// holds almost nothing, so the results stay in the broker.
class NonReader {
 public:
  explicit NonReader(const Fleet& fleet) : socket_(context_, zmq::socket_type::dealer) {
    socket_.set(zmq::sockopt::linger, 0);
    socket_.set(zmq::sockopt::rcvhwm, 1);
    socket_.set(zmq::sockopt::rcvbuf, 4096);
    fleet.secure_client_socket(socket_);
    socket_.connect(fleet.frontend());
  }
  void send_passthrough(std::uint64_t job_id, std::size_t bytes) {
    JobRequest request{.kernel = "passthrough",
                       .inputs = {Tensor::zeros(DType::kU8, {static_cast<std::int64_t>(bytes)})},
                       .timeout = std::chrono::milliseconds(20000)};
    zmq::send_multipart(socket_, core::encode_request(request, job_id, "default", std::chrono::milliseconds(20000)));
  }
  // Reads every answer that comes within `quiet` of the one before: job id -> status.
  std::map<std::uint64_t, StatusCode> read_all(std::chrono::milliseconds quiet) {
    std::map<std::uint64_t, StatusCode> answers;
    zmq::pollitem_t item{socket_.handle(), 0, ZMQ_POLLIN, 0};
    while (zmq::poll(&item, 1, quiet) > 0) {
      core::Frames frames;
      (void)zmq::recv_multipart(socket_, std::back_inserter(frames));
      const wire::Envelope* envelope = nullptr;  // decode_envelope realigns: received frames may not be
      const auto* result = core::decode_envelope(frames[0], core::Limits{}, envelope).is_ok()
                               ? envelope->body_as_JobResult()
                               : nullptr;
      if (result != nullptr) {
        answers[result->job_id()] = core::from_wire(result->status());
        if (result->status() != wire::StatusCode::OK) last_message_ = std::string(core::view(result->message()));
      }
    }
    return answers;
  }
  const std::string& last_message() const { return last_message_; }

 private:
  zmq::context_t context_;
  zmq::socket_t socket_;
  std::string last_message_;
};

FleetOptions with_small_unread_budget(std::uint32_t stall_ms) {
  FleetOptions options;
  options.workers = 1;
  options.broker_yaml_extra =
      "max_unread_result_bytes: 16777216\nclient_stall_ms: " + std::to_string(stall_ms) + "\n";
  return options;
}

TEST(UnreadResults, AClientOverItsUnreadBudgetIsRefusedAndSaysWhy) {
  Fleet fleet(with_small_unread_budget(60000));
  NonReader reader(fleet);
  for (std::uint64_t id = 1; id <= 12; ++id) reader.send_passthrough(id, 4 << 20);  // 48 MiB of results
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // all answered, most still unread in the broker
  reader.send_passthrough(100, 16);
  // Others are served meanwhile.
  Client other(fleet.client_options());
  EXPECT_TRUE(other.run({.kernel = "passthrough", .inputs = {Tensor::vector<float>({1})}}).ok());
  auto answers = reader.read_all(std::chrono::milliseconds(1000));
  EXPECT_EQ(answers.size(), 13u);
  // Every job is answered: those that arrived while the results before them stayed unread are refused.
  EXPECT_EQ(answers[1], StatusCode::kOk);
  for (std::uint64_t id = 2; id <= 12; ++id)
    EXPECT_TRUE(answers[id] == StatusCode::kOk || answers[id] == StatusCode::kResourceExhausted) << "job " << id;
  EXPECT_EQ(answers[100], StatusCode::kResourceExhausted);
  // Results of jobs already in flight that would pass the budget are withheld, so it holds.
  EXPECT_NE(fleet.broker().log().find("was withheld"), std::string::npos) << fleet.broker().log();
  EXPECT_NE(reader.last_message().find("max_unread_result_bytes of 16777216"), std::string::npos)
      << reader.last_message();
  // Read: under the budget again, so served again.
  reader.send_passthrough(101, 16);
  answers = reader.read_all(std::chrono::milliseconds(1000));
  EXPECT_EQ(answers[101], StatusCode::kOk);
}

TEST(UnreadResults, ATenantCannotHoldMoreThanItsBoundByOpeningMoreConnections) {
  FleetOptions options;
  options.workers = 1;
  options.tenants_yaml = "defaults:\n  max_inflight_jobs: 1000\ntenants:\n  default: {}\n  other: {}\n";
  // 16 MiB per connection, 24 MiB for all of a tenant's connections together.
  const int metrics_port = free_port();
  options.broker_yaml_extra =
      "max_unread_result_bytes: 16777216\nmax_unread_tenant_bytes: 25165824\nclient_stall_ms: 60000\n"
      "metrics_listen: 127.0.0.1:" + std::to_string(metrics_port) + "\n";
  Fleet fleet(options);
  std::vector<std::unique_ptr<NonReader>> readers;
  for (int r = 0; r < 3; ++r) {
    readers.push_back(std::make_unique<NonReader>(fleet));
    // 32 MiB each: what the kernel's socket buffers and the reader's queue take aside, each holds
    // most of its own 16 MiB budget in the broker, so the three pass the tenant's 24 MiB.
    for (std::uint64_t id = 1; id <= 8; ++id) readers.back()->send_passthrough(id, 4 << 20);
  }
  // Answered, and unread: until the broker holds more than the tenant's bound (a loaded machine
  // moves 96 MiB through CURVE slowly; a fixed sleep was too short there).
  const auto unread = [&] { return metric_sample(http_get(metrics_port, "/metrics"), "bridge_unread_result_bytes"); };
  ASSERT_TRUE(eventually([&] { return unread() > 25165824; }, std::chrono::seconds(60))) << unread();
  // A new connection of the same tenant, holding nothing, is refused. What the broker counts moves
  // as libzmq hands bytes to the kernel and withheld results are let go, and may dip under the
  // bound for a moment: a small job is tried until one is refused.
  NonReader fresh(fleet);
  std::uint64_t probe = 1000;  // ids of its own: a job id is answered once per connection
  const bool refused = eventually([&] {
    fresh.send_passthrough(++probe, 16);
    auto answers = fresh.read_all(std::chrono::milliseconds(300));
    return answers.count(probe) > 0 && answers[probe] == StatusCode::kResourceExhausted;
  }, std::chrono::seconds(20));
  EXPECT_TRUE(refused) << "the tenant's connections together held more than its bound, and a new one was served";
  EXPECT_NE(fresh.last_message().find("max_unread_tenant_bytes of 25165824"), std::string::npos)
      << fresh.last_message();
  // Another tenant is served meanwhile.
  Client other(fleet.client_options("other"));
  EXPECT_TRUE(other.run({.kernel = "passthrough", .inputs = {Tensor::vector<float>({1})}}).ok());
  // The tenant's clients read: it is served again.
  for (auto& reader : readers) reader->read_all(std::chrono::milliseconds(500));
  readers.clear();
  fresh.send_passthrough(101, 16);
  EXPECT_TRUE(eventually([&] {
    auto again = fresh.read_all(std::chrono::milliseconds(300));
    if (again.count(101) && again[101] == StatusCode::kOk) return true;
    fresh.send_passthrough(101, 16);
    return false;
  }, std::chrono::seconds(5)));
}

TEST(UnreadResults, AClientThatStaysOverItsBudgetIsDroppedWithALogLineAndCanComeBack) {
  Fleet fleet(with_small_unread_budget(300));
  NonReader reader(fleet);
  for (std::uint64_t id = 1; id <= 12; ++id) reader.send_passthrough(id, 4 << 20);
  EXPECT_TRUE(eventually([&] { return fleet.broker().log().find("dropped: ") != std::string::npos; },
                         std::chrono::seconds(5)))
      << fleet.broker().log();
  EXPECT_NE(fleet.broker().log().find("client_stall_ms"), std::string::npos);
  reader.send_passthrough(200, 16);  // ignored while dropped
  auto answers = reader.read_all(std::chrono::milliseconds(1000));
  EXPECT_EQ(answers.count(200), 0u) << "a dropped client is sent nothing";
  // Everything it held has drained: it is a new client now.
  reader.send_passthrough(201, 16);
  answers = reader.read_all(std::chrono::milliseconds(1000));
  EXPECT_EQ(answers[201], StatusCode::kOk);
}

}  // namespace
}  // namespace bridge::testing
