// Network partitions, inside the tests' own network namespace: cuts, loss and delay between client
// and broker, broker and workers, broker and Redis, while a checked workload runs (workload.hpp).
// Each fault heals; every job must be answered once and right, and no actor state may go back.
#include <gtest/gtest.h>

#include <iostream>
#include <thread>

#include "fleet.hpp"
#include "netns.hpp"
#include "workload.hpp"

namespace bridge::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

#define SKIP_WITHOUT_NAMESPACE() \
  if (!netns::unavailable().empty()) GTEST_SKIP() << "no network namespace: " << netns::unavailable()

int port_of(const std::string& endpoint) { return std::stoi(endpoint.substr(endpoint.rfind(':') + 1)); }

// Through faults: refusals are retried with backoff, a silent broker is asked after 300 ms.
Client::Options resilient(const Fleet& fleet) {
  Client::Options o = fleet.client_options();
  o.timeout = seconds(30);
  o.retry = {.max_attempts = 1000, .initial_backoff = milliseconds(50), .max_backoff = milliseconds(1000)};
  o.broker_check = milliseconds(300);
  return o;
}

// Runs the workload for `before`, injects the fault (made by `inject`) for `during`, heals it, runs
// for `after`, and checks the history.
template <class Inject>
Workload::Report run_with_fault(Client& client, const std::string& actor, Inject inject, seconds during,
                                seconds before = seconds(1), seconds after = seconds(3)) {
  Workload load(client, 4, actor);
  std::this_thread::sleep_for(before);
  {
    auto fault = inject();
    std::this_thread::sleep_for(during);
  }
  std::this_thread::sleep_for(after);
  Workload::Report report = load.stop();
  std::cout << report.to_string() << "\n";
  return report;
}

TEST(Partition, AClientCutFromItsBrokerMovesToTheOtherAndLosesNothing) {
  SKIP_WITHOUT_NAMESPACE();
  Fleet fleet({.workers = 0});
  const int b_frontend = free_port(), b_backend = free_port();
  auto b = fleet.start_broker(b_frontend, b_backend, "broker-b");
  for (int i = 0; i < 2; ++i) fleet.add_worker(2, fleet.backend() + "," + tcp_endpoint(b_backend));
  for (int i = 0; i < 2; ++i) fleet.add_worker(2, tcp_endpoint(b_backend) + "," + fleet.backend());
  Client::Options o = resilient(fleet);
  o.broker = fleet.frontend() + "," + tcp_endpoint(b_frontend);
  Client client(o);
  ASSERT_TRUE(eventually(
      [&] { return client.run({.kernel = "passthrough", .inputs = {Tensor::vector<float>({1})}}).ok(); }, seconds(10)))
      << fleet.logs();
  const std::string cut = client.broker();
  const auto report = run_with_fault(
      client, "cut-client", [&] { return std::make_unique<netns::Drop>(port_of(cut)); }, seconds(4));
  EXPECT_TRUE(report.clean()) << report.to_string() << "\n" << fleet.logs();
  EXPECT_GE(client.broker_moves(), 1u);
  EXPECT_NE(client.broker(), cut);
}

TEST(Partition, WorkersCutFromTheBrokerForAWhileLoseNoJob) {
  SKIP_WITHOUT_NAMESPACE();
  Fleet fleet({.workers = 2});
  Client client(resilient(fleet));
  const auto report = run_with_fault(
      client, "cut-workers", [&] { return std::make_unique<netns::Drop>(port_of(fleet.backend())); }, seconds(3));
  EXPECT_TRUE(report.clean()) << report.to_string() << "\n" << fleet.logs();
}

TEST(Partition, RedisCutFromTheBrokerForAWhileLosesNoAcknowledgedState) {
  SKIP_WITHOUT_NAMESPACE();
  Fleet fleet({.workers = 2});
  Client client(resilient(fleet));
  const auto report = run_with_fault(
      client, "cut-redis", [&] { return std::make_unique<netns::Drop>(fleet.redis().port()); }, seconds(3));
  EXPECT_TRUE(report.clean()) << report.to_string() << "\n" << fleet.logs();
}

TEST(Partition, LossOnTheClientsLinkSlowsButLosesNothing) {
  SKIP_WITHOUT_NAMESPACE();
  Fleet fleet({.workers = 2});
  Client client(resilient(fleet));
  const auto report = run_with_fault(
      client, "lossy", [&] { return std::make_unique<netns::Drop>(port_of(fleet.frontend()), 0.2); }, seconds(4));
  EXPECT_TRUE(report.clean()) << report.to_string() << "\n" << fleet.logs();
}

TEST(Partition, DelayOnEveryLinkSlowsButLosesNothing) {
  SKIP_WITHOUT_NAMESPACE();
  if (const std::string why = netns::Delay::unavailable(); !why.empty()) GTEST_SKIP() << why;
  Fleet fleet({.workers = 2});
  Client client(resilient(fleet));
  const auto report = run_with_fault(
      client, "delayed", [] { return std::make_unique<netns::Delay>(20); }, seconds(3));
  EXPECT_TRUE(report.clean()) << report.to_string() << "\n" << fleet.logs();
}

}  // namespace
}  // namespace bridge::testing
