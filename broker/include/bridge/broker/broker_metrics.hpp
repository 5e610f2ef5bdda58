#pragma once
/// @file BrokerMetrics: what the broker counts for Prometheus (docs/operations.md, "Metrics").

#include <map>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "bridge/broker/job.hpp"
#include "bridge/broker/tenants.hpp"
#include "bridge/broker/worker_registry.hpp"
#include "bridge/metrics/metrics.hpp"
#include "bridge/status.hpp"

namespace bridge::broker {

/// Names and labels in one place, so that the loop's code says what happened, not how it is
/// spelled for Prometheus. Loop thread writes; the metrics server reads through registry().
/// Label values come only from the configured tenants and the kernel catalog (what workers
/// announced): a client's unknown tenant or kernel name counts under "unknown", so no request can
/// grow the number of series.
class BrokerMetrics {
 public:
  BrokerMetrics();

  void job_answered(const Job& job, StatusCode code, std::string_view fallback_reason, std::string_view worker);
  void job_dispatched(const Job& job);
  void quota_refused(const std::string& tenant, const std::string& limit);
  void worker_seen(const WorkerRecord& worker);
  void worker_gone(const std::string& id);
  /// The tenants whose names may label a series (on start and every reload).
  void set_tenants(const TenantTable& tenants);
  /// Kernels a worker announced: they may label a series.
  void add_kernels(const std::vector<std::string>& kernels);
  void fleet(std::size_t queued, std::size_t inflight, std::size_t workers, std::size_t actors, bool redis_connected,
             bool redis_refusing, std::uint64_t unread_result_bytes);
  void client_dropped();
  /// Redis was found to have lost the fleet's data (StoreEpoch).
  void store_lost();
  void connections(std::int64_t clients, std::int64_t open_files, std::int64_t open_files_limit);

  const metrics::Registry& registry() const { return registry_; }

 private:
  /// A job's series for one label set, found once: the labels are otherwise built and looked up a
  /// few times per job.
  struct JobSeries {
    metrics::Registry::Handle answered;  ///< bridge_jobs_total
    metrics::Registry::Handle latency;   ///< bridge_job_latency_seconds, once a job is answered OK
  };
  std::string_view tenant_label(std::string_view tenant) const;
  std::string_view kernel_label(std::string_view kernel) const;
  JobSeries& job_series(std::string_view tenant, std::string_view kernel, StatusCode code);

  static constexpr std::size_t kMaxKernelLabels = 256;
  metrics::Registry registry_;
  std::set<std::string, std::less<>> tenants_;
  std::set<std::string, std::less<>> kernels_;
  // Keyed by labels (the set and "unknown"), so as bounded as the series themselves.
  std::map<std::tuple<std::string, std::string, StatusCode>, JobSeries, std::less<>> job_series_;
  std::map<std::string, metrics::Registry::Handle, std::less<>> queue_wait_;  ///< by tenant label
};

/// A fallback_reason as a small fixed set, for a label: no_gpu_kernel, out_of_memory, device_failure,
/// breaker_open, other.
std::string fallback_class(std::string_view reason);

}  // namespace bridge::broker
