// check_request: every refusal that needs no Redis, each with a message that says what to fix.
#include <gtest/gtest.h>

#include "bridge/broker/request_checks.hpp"

namespace bridge::broker {
namespace {

const RequestCheckOptions kOptions{.tenants_file = "tenants.yaml", .max_queued_jobs = 10, .retry_after_ms = 50};

TenantTable tenants() {
  return TenantTable::parse("tenants:\n  t:\n    kernels: [vector_add, matmul, sleep]\n    min_priority: -1\n"
                            "    max_priority: 1\n    max_inflight_bytes: 1000\n",
                            "tenants.yaml");
}

WorkerRegistry cpu_worker(std::vector<std::string> kernels = {"vector_add", "sleep"}) {
  WorkerRegistry r;
  WorkerRecord w;
  w.id = "w";
  w.slots = 1;
  w.kernels = std::move(kernels);
  std::vector<Job*> orphaned;
  r.upsert(std::move(w), orphaned);
  return r;
}

Job job(const std::string& tenant, std::vector<std::string> kernels, int priority = 0, std::uint64_t bytes = 0,
        Placement placement = Placement::kAny) {
  Job j;
  j.tenant = tenant;
  j.kernel = kernels.front();
  j.kernels = std::move(kernels);
  j.priority = priority;
  j.payload_bytes = bytes;
  j.placement = placement;
  return j;
}

Status check(const Job& j, const WorkerRegistry& workers, std::size_t waiting = 1) {
  std::uint32_t retry_after = 0;
  return check_request(j, tenants(), workers, waiting, kOptions, retry_after);
}

TEST(RequestChecks, AWellFormedRequestPasses) {
  EXPECT_TRUE(check(job("t", {"vector_add"}), cpu_worker()).is_ok());
}

TEST(RequestChecks, EachRefusalHasItsCodeAndSaysWhatToFix) {
  const WorkerRegistry workers = cpu_worker();
  struct Case {
    Job job;
    StatusCode code;
    const char* says;
  };
  const Case cases[] = {
      {job("nobody", {"vector_add"}), StatusCode::kUnknownTenant, "tenant 'nobody' is not configured in tenants.yaml"},
      {job("t", {"vector_add", "softmax"}), StatusCode::kPermissionDenied, "may not run kernel 'softmax'"},
      {job("t", {"vector_add"}, 5), StatusCode::kPermissionDenied, "may use priorities -1..1, not 5"},
      {job("t", {"vector_add"}, 0, 2000), StatusCode::kTooLarge, "max_inflight_bytes 1000"},
      {job("t", {"matmul"}), StatusCode::kUnknownKernel,
       "no worker in the fleet has kernel 'matmul'; available: sleep, vector_add"},
      {job("t", {"vector_add"}, 0, 0, Placement::kRequireGpu), StatusCode::kNoCapableWorker, "placement require-gpu"},
  };
  for (const Case& c : cases) {
    const Status s = check(c.job, workers);
    EXPECT_EQ(s.code(), c.code) << s.to_string();
    EXPECT_NE(s.message().find(c.says), std::string::npos) << s.message();
  }
}

TEST(RequestChecks, AFullQueueIsQueueFullWithRetryAdvice) {
  std::uint32_t retry_after = 0;
  const Status s = check_request(job("t", {"vector_add"}), tenants(), cpu_worker(), 11, kOptions, retry_after);
  EXPECT_EQ(s.code(), StatusCode::kQueueFull);
  EXPECT_EQ(retry_after, 50u);
  EXPECT_TRUE(check(job("t", {"vector_add"}), cpu_worker(), 10).is_ok()) << "the limit itself is allowed";
}

TEST(RequestChecks, WithNoWorkerYetKernelsAndPlacementWait) {
  const WorkerRegistry none;
  EXPECT_TRUE(check(job("t", {"matmul"}, 0, 0, Placement::kRequireGpu), none).is_ok());
}

}  // namespace
}  // namespace bridge::broker
