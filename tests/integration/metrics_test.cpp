// /metrics, /healthz and /readyz of a running broker and worker: scraped over HTTP on 127.0.0.1
// while jobs run, the counters must move with them.
#include <gtest/gtest.h>

#include <httplib.h>

#include <future>
#include <sstream>

#include "fleet.hpp"
#include "http_metrics.hpp"

namespace bridge::testing {
namespace {

std::string get(int port, const std::string& path, int* status = nullptr) { return http_get(port, path, status); }
double sample(const std::string& text, const std::string& series) { return metric_sample(text, series); }

TEST(Metrics, CountersMoveAsJobsRunAndHealthEndpointsAnswer) {
  const int broker_port = free_port(), worker_port = free_port();
  Fleet fleet({.workers = 1,
               .broker_yaml_extra = "metrics_listen: 127.0.0.1:" + std::to_string(broker_port) + "\nlog_format: json\n",
               .worker_yaml_extra = "metrics_listen: 127.0.0.1:" + std::to_string(worker_port) + "\n"});
  int status = 0;
  EXPECT_EQ(get(broker_port, "/healthz", &status), "ok\n");
  EXPECT_EQ(status, 200);
  EXPECT_TRUE(eventually([&] { return get(broker_port, "/readyz", &status), status == 200; }, std::chrono::seconds(5)))
      << get(broker_port, "/readyz");
  EXPECT_TRUE(eventually([&] { return get(worker_port, "/readyz", &status), status == 200; }, std::chrono::seconds(5)))
      << get(worker_port, "/readyz");

  Client client(fleet.client_options());
  for (int i = 0; i < 5; ++i)
    ASSERT_TRUE(
        client.run({.kernel = "vector_add", .inputs = {Tensor::vector<float>({1}), Tensor::vector<float>({2})}}).ok());
  EXPECT_FALSE(client.run({.kernel = "vector_add", .inputs = {Tensor::vector<float>({1})}}).ok());  // INVALID_ARGUMENT

  const std::string broker = get(broker_port, "/metrics");
  EXPECT_EQ(sample(broker, R"(bridge_jobs_total{tenant="default",kernel="vector_add",status="OK"})"), 5) << broker;
  EXPECT_EQ(sample(broker, R"(bridge_jobs_total{tenant="default",kernel="vector_add",status="INVALID_ARGUMENT"})"), 1);
  EXPECT_EQ(sample(broker, R"(bridge_job_latency_seconds_count{tenant="default",kernel="vector_add"})"), 5);
  EXPECT_EQ(sample(broker, R"(bridge_job_latency_seconds_bucket{tenant="default",kernel="vector_add",le="+Inf"})"), 5);
  EXPECT_EQ(sample(broker, "bridge_workers"), 1);
  EXPECT_EQ(sample(broker, R"(bridge_worker_slots{worker="worker-0"})"), 2);
  EXPECT_NE(broker.find("# TYPE bridge_job_latency_seconds histogram"), std::string::npos);

  EXPECT_TRUE(eventually(
      [&] {
        const std::string worker = get(worker_port, "/metrics");
        return sample(worker, R"(bridge_worker_jobs_total{kernel="vector_add",device="cpu",status="OK"})") == 5 &&
               sample(worker, R"(bridge_worker_compute_seconds_count{kernel="vector_add",device="cpu"})") == 5;
      },
      std::chrono::seconds(3)))
      << get(worker_port, "/metrics");

  // The broker logged in JSON: one object per line, messages escaped.
  std::istringstream log(fleet.broker().log());
  int lines = 0;
  for (std::string line; std::getline(log, line);) {
    if (line.empty()) continue;
    ++lines;
    EXPECT_EQ(line.rfind("{\"time\":\"", 0), 0u) << line;
    EXPECT_EQ(line.substr(line.size() - 2), "\"}") << line;
    EXPECT_NE(line.find("\"process\":\"broker\""), std::string::npos) << line;
  }
  EXPECT_GT(lines, 1);

  // bridgectl top, one screen: the worker, its completed jobs, the tenants.
  TempDir dir;
  Process top({BRIDGE_TEST_BRIDGECTL_BIN, "--broker", fleet.frontend(), "--key-file", fleet.key_file("operator"),
               "--broker-key-file", fleet.broker_public_key_file(), "top", "--once", "--interval", "200"},
              (dir.path() / "top.txt").string());
  ASSERT_EQ(top.wait(std::chrono::seconds(10)), 0) << top.log();
  const std::string screen = top.log();
  EXPECT_NE(screen.find("workers 1"), std::string::npos) << screen;
  EXPECT_NE(screen.find("worker-0"), std::string::npos) << screen;
  EXPECT_NE(screen.find("TENANT"), std::string::npos) << screen;
  EXPECT_NE(screen.find("default"), std::string::npos) << screen;

  // A worker that leaves takes its series with it.
  fleet.worker(0).kill_hard();
  EXPECT_TRUE(
      eventually([&] { return sample(get(broker_port, "/metrics"), R"(bridge_worker_slots{worker="worker-0"})") < 0; },
                 std::chrono::seconds(5)));
  EXPECT_TRUE(eventually([&] { return get(broker_port, "/readyz", &status), status == 503; }, std::chrono::seconds(5)));
  EXPECT_NE(get(broker_port, "/readyz").find("no worker"), std::string::npos);
}

// Label values come only from configured tenants and the kernels workers announced: a client's
// made-up names count under "unknown", so no request can grow the number of series.
TEST(Metrics, MadeUpTenantAndKernelNamesDoNotAddSeries) {
  const int broker_port = free_port();
  // Open mode, where a request's tenant field is believed (with keys, naming another tenant is
  // refused before any label is made).
  Fleet fleet({.workers = 1, .broker_yaml_extra = "metrics_listen: 127.0.0.1:" + std::to_string(broker_port) + "\n",
               .secure = false});
  Client client(fleet.client_options());
  const JobRequest job{.kernel = "vector_add", .inputs = {Tensor::vector<float>({1}), Tensor::vector<float>({2})}};
  ASSERT_TRUE(client.run(job).ok());
  ASSERT_FALSE(
      client.run({.kernel = "no_such_kernel", .tenant = "no-such-tenant"}).ok());  // the "unknown" series exist
  const std::size_t before = get(broker_port, "/metrics").size();
  std::vector<std::future<JobResult>> refused;
  for (int i = 0; i < 2000; ++i)
    refused.push_back(
        client.submit({.kernel = "kernel-" + std::to_string(i), .tenant = "tenant-" + std::to_string(i)}));
  for (auto& f : refused) EXPECT_FALSE(f.get().ok());
  const std::string after = get(broker_port, "/metrics");
  EXPECT_LT(after.size(), before + 2048) << "grew from " << before << " to " << after.size() << " bytes";
  EXPECT_EQ(after.find("tenant-1"), std::string::npos);
  EXPECT_EQ(after.find("kernel-1"), std::string::npos);
  EXPECT_GE(sample(after, R"(bridge_jobs_total{tenant="unknown",kernel="unknown",status="UNKNOWN_TENANT"})"), 2000)
      << after;
}

std::size_t occurrences(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// Redis at maxmemory (noeviction) accepts reads and refuses writes: the broker must not call itself
// ready, must say so once in its log rather than once per job, and must recover by itself.
TEST(Metrics, ReadyzIsNotReadyWhileRedisRefusesWritesWhichIsLoggedOnceAndRecovered) {
  const int broker_port = free_port();
  Fleet fleet({.workers = 1,
               .tenants_yaml = "tenants:\n  default:\n    max_inflight_jobs: 1\n",  // every job asks Redis
               .broker_yaml_extra = "metrics_listen: 127.0.0.1:" + std::to_string(broker_port) + "\n"});
  int status = 0;
  ASSERT_TRUE(eventually([&] { return get(broker_port, "/readyz", &status), status == 200; }, std::chrono::seconds(5)));
  Client client(fleet.client_options());
  const JobRequest job{.kernel = "vector_add", .inputs = {Tensor::vector<float>({1}), Tensor::vector<float>({2})}};
  ASSERT_TRUE(client.run(job).ok());
  ASSERT_TRUE(
      eventually([&] { return fleet.redis().hash_total("bridge:inflight:default") == "0"; }, std::chrono::seconds(2)));

  fleet.redis().command({"CONFIG", "SET", "maxmemory", "1"});
  int unavailable = 0;
  for (int i = 0; i < 50; ++i) {
    JobResult r = client.run(job);
    if (r.status.code() == StatusCode::kUnavailable) ++unavailable;
    if (i == 0) {
      EXPECT_NE(r.status.message().find("OOM"), std::string::npos) << r.status.to_string();
    }
  }
  EXPECT_EQ(unavailable, 50);
  EXPECT_TRUE(eventually([&] { return get(broker_port, "/readyz", &status), status == 503; }, std::chrono::seconds(3)));
  EXPECT_NE(get(broker_port, "/readyz").find("Redis refuses the broker's commands: OOM"), std::string::npos)
      << get(broker_port, "/readyz");
  EXPECT_EQ(sample(get(broker_port, "/metrics"), "bridge_redis_refusing"), 1);
  EXPECT_EQ(occurrences(fleet.broker().log(), "refuses the broker's commands"), 1u) << fleet.broker().log();

  fleet.redis().command({"CONFIG", "SET", "maxmemory", "0"});
  EXPECT_TRUE(eventually([&] { return get(broker_port, "/readyz", &status), status == 200; }, std::chrono::seconds(5)))
      << get(broker_port, "/readyz");
  EXPECT_TRUE(client.run(job).ok());
  EXPECT_EQ(occurrences(fleet.broker().log(), "accepts the broker's commands again"), 1u);
  // Nothing stays leased from the give-backs Redis refused.
  EXPECT_TRUE(
      eventually([&] { return fleet.redis().hash_total("bridge:inflight:default") == "0"; }, std::chrono::seconds(3)))
      << fleet.redis().hash_total("bridge:inflight:default");
}

}  // namespace
}  // namespace bridge::testing
