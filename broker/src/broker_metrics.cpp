#include "bridge/broker/broker_metrics.hpp"

namespace bridge::broker {
namespace {

using metrics::Registry;

double seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

}  // namespace

std::string fallback_class(std::string_view reason) {
  if (reason.find("no GPU implementation") != std::string::npos) return "no_gpu_kernel";
  if (reason.find("out of memory") != std::string::npos) return "out_of_memory";
  if (reason.find("GPU failure") != std::string::npos) return "device_failure";
  if (reason.find("breaker") != std::string::npos || reason.find("disabled") != std::string::npos)
    return "breaker_open";
  return "other";
}

BrokerMetrics::BrokerMetrics() {
  registry_.describe("bridge_jobs_total", Registry::Type::kCounter,
                     "Jobs answered, by tenant, first kernel and status.");
  registry_.describe("bridge_job_latency_seconds", Registry::Type::kHistogram,
                     "Broker receive to answer, of jobs answered OK.", metrics::latency_buckets());
  registry_.describe("bridge_queue_wait_seconds", Registry::Type::kHistogram,
                     "Broker receive to dispatch (quota admission and queueing).", metrics::latency_buckets());
  registry_.describe(
      "bridge_quota_refusals_total", Registry::Type::kCounter,
      "Jobs refused by a tenant quota, by limit (max_unread_result_bytes: the client's own unread results).");
  registry_.describe("bridge_client_connections", Registry::Type::kGauge, "Client connections open on the frontend.");
  registry_.describe("bridge_open_files", Registry::Type::kGauge,
                     "File descriptors the broker holds (one per connection, and a few).");
  registry_.describe("bridge_open_files_limit", Registry::Type::kGauge, "The broker's open-files limit.");
  registry_.describe("bridge_redis_refusing", Registry::Type::kGauge,
                     "1 while Redis refuses the broker's commands (out of memory, authentication, read-only).");
  registry_.describe(
      "bridge_unread_result_bytes", Registry::Type::kGauge,
      "Bytes of results sent to clients and not yet written to their connections, all clients together.");
  registry_.describe("bridge_redis_data_losses_total", Registry::Type::kCounter,
                     "Times Redis was found without the fleet's data (restarted empty, flushed, failed over to a "
                     "replica without it): actors this broker served are marked lost.");
  registry_.describe("bridge_clients_dropped_total", Registry::Type::kCounter,
                     "Clients dropped for leaving more than max_unread_result_bytes unread for client_stall_ms.");
  registry_.describe("bridge_fallbacks_total", Registry::Type::kCounter,
                     "Jobs a GPU worker ran on its CPU, by worker and reason.");
  registry_.describe("bridge_queued_jobs", Registry::Type::kGauge,
                     "Jobs waiting in the broker (queue, admission, actor turns).");
  registry_.describe("bridge_inflight_jobs", Registry::Type::kGauge,
                     "Jobs dispatched to workers and not yet answered.");
  registry_.describe("bridge_workers", Registry::Type::kGauge, "Workers registered.");
  registry_.describe("bridge_actors", Registry::Type::kGauge, "Actors this broker serves.");
  registry_.describe("bridge_redis_connected", Registry::Type::kGauge, "1 while Redis is connected.");
  registry_.describe("bridge_worker_slots", Registry::Type::kGauge, "Jobs a worker runs at once.");
  registry_.describe("bridge_worker_prefetch", Registry::Type::kGauge,
                     "Jobs a worker may hold beyond its slots, waiting there for a slot.");
  registry_.describe("bridge_worker_inflight_jobs", Registry::Type::kGauge, "Jobs in flight on a worker.");
  registry_.describe("bridge_worker_gpu_disabled", Registry::Type::kGauge,
                     "1 while a GPU worker's circuit breaker is open.");
  registry_.describe("bridge_device_utilization_percent", Registry::Type::kGauge,
                     "Device utilisation (absent: unknown).");
  registry_.describe("bridge_device_free_memory_bytes", Registry::Type::kGauge,
                     "Free device memory (absent: unknown).");
  registry_.describe("bridge_device_temperature_celsius", Registry::Type::kGauge, "GPU temperature (absent: unknown).");
  registry_.describe("bridge_device_power_watts", Registry::Type::kGauge, "GPU power draw (absent: unknown).");
  registry_.describe("bridge_pool_bytes", Registry::Type::kGauge,
                     "Device memory pool bytes, by state (in_use, cached).");
  registry_.describe("bridge_pool_allocations", Registry::Type::kGauge,
                     "Device memory pool allocations so far, by result (hit, miss).");
}

void BrokerMetrics::set_tenants(const TenantTable& tenants) {
  tenants_.clear();
  for (const auto& [name, quota] : tenants.tenants()) tenants_.insert(name);
}

void BrokerMetrics::add_kernels(const std::vector<std::string>& kernels) {
  // Kernels workers announced, up to a bound: workers are not yet authenticated (a rogue process on
  // the backend could announce thousands), and past it a name counts as "unknown".
  for (const auto& k : kernels)
    if (kernels_.size() < kMaxKernelLabels) kernels_.insert(k);
}

std::string_view BrokerMetrics::tenant_label(std::string_view tenant) const {
  auto it = tenants_.find(tenant);
  return it != tenants_.end() ? std::string_view(*it) : "unknown";
}

std::string_view BrokerMetrics::kernel_label(std::string_view kernel) const {
  auto it = kernels_.find(kernel);
  return it != kernels_.end() ? std::string_view(*it) : "unknown";
}

BrokerMetrics::JobSeries& BrokerMetrics::job_series(std::string_view tenant, std::string_view kernel, StatusCode code) {
  auto it = job_series_.find(std::tuple{tenant, kernel, code});
  if (it == job_series_.end()) {
    it = job_series_.emplace(std::tuple{std::string(tenant), std::string(kernel), code}, JobSeries{}).first;
    it->second.answered = registry_.handle("bridge_jobs_total",
                                           {{"tenant", tenant}, {"kernel", kernel}, {"status", status_code_name(code)}},
                                           Registry::Type::kCounter);
  }
  return it->second;
}

void BrokerMetrics::job_answered(const Job& job, StatusCode code, std::string_view fallback_reason,
                                 std::string_view worker) {
  const std::string_view tenant = tenant_label(job.tenant), kernel = kernel_label(job.kernel);
  JobSeries& series = job_series(tenant, kernel, code);
  series.answered.add();
  if (code == StatusCode::kOk) {
    if (!series.latency)
      series.latency = registry_.handle("bridge_job_latency_seconds", {{"tenant", tenant}, {"kernel", kernel}},
                                        Registry::Type::kHistogram);
    series.latency.observe(seconds(Clock::now() - job.received));
  }
  if (!fallback_reason.empty())
    registry_.add("bridge_fallbacks_total", {{"worker", worker}, {"reason", fallback_class(fallback_reason)}});
}

void BrokerMetrics::job_dispatched(const Job& job) {
  if (job.attempts != 1) return;
  const std::string_view tenant = tenant_label(job.tenant);
  auto it = queue_wait_.find(tenant);
  if (it == queue_wait_.end())
    it = queue_wait_
             .emplace(std::string(tenant),
                      registry_.handle("bridge_queue_wait_seconds", {{"tenant", tenant}}, Registry::Type::kHistogram))
             .first;
  it->second.observe(seconds(job.dispatched - job.received));
}

void BrokerMetrics::quota_refused(const std::string& tenant, const std::string& limit) {
  registry_.add("bridge_quota_refusals_total",
                {{"tenant", tenant_label(tenant)}, {"limit", limit.empty() ? "unknown" : limit}});
}

void BrokerMetrics::worker_seen(const WorkerRecord& w) {
  auto set = [&](std::string_view name, double value) { registry_.set(name, {{"worker", w.id}}, value); };
  set("bridge_worker_slots", w.slots);
  set("bridge_worker_prefetch", w.prefetch);
  set("bridge_worker_inflight_jobs", static_cast<double>(w.inflight.size()));
  set("bridge_worker_gpu_disabled", w.metrics.gpu_disabled ? 1 : 0);
  const DeviceMetrics& m = w.metrics;
  // An unknown reading (-1) is left out rather than exported as a value.
  if (m.utilization_percent >= 0) set("bridge_device_utilization_percent", m.utilization_percent);
  if (m.free_memory_bytes >= 0) set("bridge_device_free_memory_bytes", static_cast<double>(m.free_memory_bytes));
  if (m.temperature_c >= 0) set("bridge_device_temperature_celsius", m.temperature_c);
  if (m.power_watts >= 0) set("bridge_device_power_watts", m.power_watts);
  if (m.pool_bytes_in_use >= 0) {
    registry_.set("bridge_pool_bytes", {{"worker", w.id}, {"state", "in_use"}},
                  static_cast<double>(m.pool_bytes_in_use));
    registry_.set("bridge_pool_bytes", {{"worker", w.id}, {"state", "cached"}},
                  static_cast<double>(m.pool_bytes_cached));
    registry_.set("bridge_pool_allocations", {{"worker", w.id}, {"result", "hit"}}, static_cast<double>(m.pool_hits));
    registry_.set("bridge_pool_allocations", {{"worker", w.id}, {"result", "miss"}},
                  static_cast<double>(m.pool_misses));
  }
}

void BrokerMetrics::worker_gone(const std::string& id) {
  for (const char* name :
       {"bridge_worker_slots", "bridge_worker_prefetch", "bridge_worker_inflight_jobs", "bridge_worker_gpu_disabled",
        "bridge_device_utilization_percent", "bridge_device_free_memory_bytes", "bridge_device_temperature_celsius",
        "bridge_device_power_watts", "bridge_pool_bytes", "bridge_pool_allocations"})
    registry_.remove(name, "worker", id);
}

void BrokerMetrics::client_dropped() { registry_.add("bridge_clients_dropped_total", {}); }
void BrokerMetrics::store_lost() { registry_.add("bridge_redis_data_losses_total", {}); }

void BrokerMetrics::connections(std::int64_t clients, std::int64_t open_files, std::int64_t open_files_limit) {
  registry_.set("bridge_client_connections", {}, static_cast<double>(clients));
  registry_.set("bridge_open_files", {}, static_cast<double>(open_files));
  registry_.set("bridge_open_files_limit", {}, static_cast<double>(open_files_limit));
}

void BrokerMetrics::fleet(std::size_t queued, std::size_t inflight, std::size_t workers, std::size_t actors,
                          bool redis_connected, bool redis_refusing, std::uint64_t unread_result_bytes) {
  registry_.set("bridge_redis_refusing", {}, redis_refusing ? 1 : 0);
  registry_.set("bridge_unread_result_bytes", {}, static_cast<double>(unread_result_bytes));
  registry_.set("bridge_queued_jobs", {}, static_cast<double>(queued));
  registry_.set("bridge_inflight_jobs", {}, static_cast<double>(inflight));
  registry_.set("bridge_workers", {}, static_cast<double>(workers));
  registry_.set("bridge_actors", {}, static_cast<double>(actors));
  registry_.set("bridge_redis_connected", {}, redis_connected ? 1 : 0);
}

}  // namespace bridge::broker
