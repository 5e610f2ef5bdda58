#pragma once
/// @file WorkerMetrics: what a worker reports on /metrics (docs/operations.md, "Metrics"), and the
/// /metrics, /healthz, /readyz endpoint when metrics_listen is set.

#include <cstdint>
#include <map>
#include <memory>
#include <tuple>

#include "bridge/fleet.hpp"
#include "bridge/metrics/metrics_server.hpp"
#include "bridge/worker/backend.hpp"
#include "bridge/worker/worker_options.hpp"

namespace bridge::worker {

/// Updated by the worker's socket thread; the registry itself is thread-safe, so the HTTP server
/// reads it from its own thread.
class WorkerMetrics {
 public:
  /// Describes every series and starts the endpoint when `options.metrics_listen` is set; /readyz
  /// is ready while the broker is heard.
  explicit WorkerMetrics(const WorkerOptions& options);

  /// The gauges, at each heartbeat.
  void heartbeat(std::uint32_t inflight, bool broker_connected, std::size_t actors, std::uint64_t resident_bytes,
                 const DeviceMetrics& device);
  /// A job answered: its count by kernel, device and status; compute time, fallback and batching.
  void answered(const Execution& execution, const DeviceInfo& device);

 private:
  /// A job's series for one (kernel, device, status), found once: its labels are otherwise built
  /// and looked up on every answer.
  struct JobSeries {
    metrics::Registry::Handle jobs;     ///< bridge_worker_jobs_total
    metrics::Registry::Handle compute;  ///< bridge_worker_compute_seconds, once a job is answered OK
    metrics::Registry::Handle batched;  ///< bridge_worker_batched_jobs_total, once a job shared a launch
  };

  metrics::Registry registry_;
  std::unique_ptr<metrics::MetricsServer> server_;  ///< when metrics_listen is set
  // Kernels are registered for the process's life, so their addresses name them.
  std::map<std::tuple<const KernelSpec*, DeviceKind, StatusCode>, JobSeries> job_series_;
};

}  // namespace bridge::worker
