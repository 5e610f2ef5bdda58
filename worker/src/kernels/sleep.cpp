// sleep: holds a job slot for `ms` milliseconds and returns nothing. A kernel with a known, fixed
// duration: the tests use it to observe flow control and failover, the load tests to measure how
// the broker scales with workers. It occupies one worker thread while it sleeps, and stops when the
// job is cancelled.
#include <chrono>
#include <thread>

#include "checks.hpp"

namespace bridge::worker {
namespace {

constexpr const char* kName = "sleep";
constexpr double kMaxSleepMs = 60000;

Status plan(const KernelArgs& args, std::vector<OutputSpec>&) {
  double ms = 0;
  BRIDGE_RETURN_IF_ERROR(checks::input_count(kName, args, 0, "none"));
  BRIDGE_RETURN_IF_ERROR(checks::required_param(kName, args, "ms", ms));
  if (ms < 0 || ms > kMaxSleepMs)
    return {StatusCode::kInvalidArgument, std::string(kName) + ": param 'ms' must be between 0 and 60000"};
  return {};
}

void run_cpu(const KernelArgs& args, std::span<Tensor>) {
  const auto duration = std::chrono::duration_cast<std::chrono::nanoseconds>(
      std::chrono::duration<double, std::milli>(*args.find_param("ms")));
  // Wakes early when the job is stopped (the broker's Cancel, or its deadline).
  if (args.cancel != nullptr) {
    args.cancel->wait_for(duration);
  } else {
    std::this_thread::sleep_for(duration);
  }
}

KernelSpec make_spec() {
  return {kName, "param ms -> nothing, after ms milliseconds", plan, run_cpu, /*batchable=*/false, /*params=*/{"ms"}};
}
BRIDGE_REGISTER_KERNEL(make_spec);

}  // namespace
}  // namespace bridge::worker
