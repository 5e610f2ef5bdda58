#pragma once
/// @file BrokerMetrics: what the broker counts for Prometheus (docs/operations.md, "Metrics").

#include <string>
#include <string_view>

#include "bridge/broker/job.hpp"
#include "bridge/broker/worker_registry.hpp"
#include "bridge/metrics/metrics.hpp"
#include "bridge/status.hpp"

namespace bridge::broker {

/// Names and labels in one place, so that the loop's code says what happened, not how it is
/// spelled for Prometheus. Loop thread writes; the metrics server reads through registry().
class BrokerMetrics {
 public:
  BrokerMetrics();

  void job_answered(const Job& job, StatusCode code, std::string_view fallback_reason, std::string_view worker);
  void job_dispatched(const Job& job);
  void quota_refused(const std::string& tenant, const std::string& limit);
  void worker_seen(const WorkerRecord& worker);
  void worker_gone(const std::string& id);
  void fleet(std::size_t queued, std::size_t inflight, std::size_t workers, std::size_t actors, bool redis_connected);

  const metrics::Registry& registry() const { return registry_; }

 private:
  metrics::Registry registry_;
};

/// A fallback_reason as a small fixed set, for a label: no_gpu_kernel, out_of_memory, device_failure,
/// breaker_open, other.
std::string fallback_class(std::string_view reason);

}  // namespace bridge::broker
