#include "bridge/worker/worker_metrics.hpp"

#include <spdlog/spdlog.h>

namespace bridge::worker {

WorkerMetrics::WorkerMetrics(const WorkerOptions& options) {
  using metrics::Registry;
  registry_.describe("bridge_worker_jobs_total", Registry::Type::kCounter,
                     "Jobs this worker answered, by kernel, device and status.");
  registry_.describe("bridge_worker_compute_seconds", Registry::Type::kHistogram, "Kernel time of jobs answered OK.",
                     metrics::latency_buckets());
  registry_.describe(
      "bridge_worker_fallbacks_total", Registry::Type::kCounter,
      "Jobs run on the CPU instead of the GPU, by kernel (fallback_reason in results and logs says why).");
  registry_.describe("bridge_worker_batched_jobs_total", Registry::Type::kCounter, "Jobs that shared a kernel launch.");
  registry_.describe("bridge_worker_inflight_jobs", Registry::Type::kGauge, "Jobs accepted and not yet answered.");
  registry_.describe("bridge_worker_broker_connected", Registry::Type::kGauge,
                     "1 while the broker is heard within its liveness.");
  registry_.describe("bridge_worker_actors", Registry::Type::kGauge, "Actor activations held.");
  registry_.describe("bridge_worker_resident_bytes", Registry::Type::kGauge, "Bytes of the actors' resident tensors.");
  registry_.describe("bridge_worker_gpu_disabled", Registry::Type::kGauge,
                     "1 while the circuit breaker keeps jobs off the GPU.");
  registry_.describe("bridge_worker_pool_bytes", Registry::Type::kGauge,
                     "Memory pool bytes (a GPU's device memory; a CPU worker's output buffers), by state "
                     "(in_use, cached).");
  if (!options.metrics_listen.empty()) {
    server_ = std::make_unique<metrics::MetricsServer>(
        options.metrics_listen, registry_,
        [this]() -> std::string {
          return registry_.value("bridge_worker_broker_connected", {}) >= 1 ? std::string() : "the broker is not heard";
        },
        metrics::MetricsServer::read_token_file(options.metrics_token_file));
    if (options.metrics_token_file.empty() && !metrics::MetricsServer::is_loopback(options.metrics_listen))
      spdlog::warn("metrics_listen {} is reachable beyond this machine and has no metrics_token_file",
                   options.metrics_listen);
  }
}

void WorkerMetrics::heartbeat(std::uint32_t inflight, bool broker_connected, std::size_t actors,
                              std::uint64_t resident_bytes, const DeviceMetrics& device) {
  registry_.set("bridge_worker_inflight_jobs", {}, inflight);
  registry_.set("bridge_worker_broker_connected", {}, broker_connected ? 1 : 0);
  registry_.set("bridge_worker_actors", {}, static_cast<double>(actors));
  registry_.set("bridge_worker_resident_bytes", {}, static_cast<double>(resident_bytes));
  registry_.set("bridge_worker_gpu_disabled", {}, device.gpu_disabled ? 1 : 0);
  if (device.pool_bytes_in_use >= 0) {
    registry_.set("bridge_worker_pool_bytes", {{"state", "in_use"}}, static_cast<double>(device.pool_bytes_in_use));
    registry_.set("bridge_worker_pool_bytes", {{"state", "cached"}}, static_cast<double>(device.pool_bytes_cached));
  }
}

void WorkerMetrics::answered(const Execution& execution, const DeviceInfo& device) {
  if (execution.kernel == nullptr) return;  // refused before a kernel was known
  const std::string_view kernel = execution.kernel->name, device_kind = device_kind_name(device.kind);
  const StatusCode code = execution.status.code();
  auto [it, created] = job_series_.try_emplace(std::tuple{execution.kernel, device.kind, code});
  JobSeries& series = it->second;
  using Type = metrics::Registry::Type;
  if (created)
    series.jobs = registry_.handle("bridge_worker_jobs_total",
                                   {{"kernel", kernel}, {"device", device_kind}, {"status", status_code_name(code)}},
                                   Type::kCounter);
  series.jobs.add();
  if (execution.status.is_ok()) {
    if (!series.compute)
      series.compute = registry_.handle("bridge_worker_compute_seconds", {{"kernel", kernel}, {"device", device_kind}},
                                        Type::kHistogram);
    series.compute.observe(static_cast<double>(execution.compute_us) / 1e6);
  }
  if (!execution.fallback_reason.empty()) registry_.add("bridge_worker_fallbacks_total", {{"kernel", kernel}});
  if (execution.batch_size > 1) {
    if (!series.batched)
      series.batched = registry_.handle("bridge_worker_batched_jobs_total", {{"kernel", kernel}}, Type::kCounter);
    series.batched.add();
  }
}

}  // namespace bridge::worker
