#pragma once
/// @file The fleet as the broker sees it (bridgectl status).

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "bridge/export.hpp"
#include "bridge/job.hpp"

namespace bridge {

struct BRIDGE_API DeviceInfo {
  DeviceKind kind = DeviceKind::kCpu;
  std::string name;
  std::uint64_t total_memory_bytes = 0;
  int compute_capability_major = -1;  ///< -1: not applicable or unknown
  int compute_capability_minor = -1;
  int multiprocessors = -1;  ///< SMs for CUDA, logical cores for CPU
};

/// Readings at the last heartbeat; -1 means the worker could not read the value.
struct BRIDGE_API DeviceMetrics {
  std::int64_t free_memory_bytes = -1;
  float utilization_percent = -1;
  float temperature_c = -1;
  float power_watts = -1;
  std::int64_t pool_bytes_in_use = -1;  ///< device memory pool; -1: the worker has none
  std::int64_t pool_bytes_cached = -1;
  std::uint64_t pool_hits = 0;
  std::uint64_t pool_misses = 0;
  bool gpu_disabled = false;  ///< circuit breaker open after repeated GPU failures
};

struct BRIDGE_API WorkerInfo {
  std::string id;
  DeviceInfo device;
  std::vector<std::string> kernels;
  std::uint32_t slots = 0;     ///< jobs that run at once
  std::uint32_t prefetch = 0;  ///< jobs the broker may send beyond slots, to wait there for a slot
  std::uint32_t inflight = 0;  ///< jobs sent and not answered: running and waiting
  std::chrono::milliseconds since_heartbeat{0};
  std::uint64_t completed = 0;
  DeviceMetrics metrics;
};

/// One tenant's limits (tenants.yaml) and its fleet-wide usage (Redis) as a broker reports them.
struct BRIDGE_API TenantQuotaInfo {
  std::string tenant;
  std::uint32_t max_inflight_jobs = 0;
  std::uint64_t max_inflight_bytes = 0;
  double rate = 0;  ///< jobs per second; 0 = unlimited
  double burst = 0;
  double weight = 1;
  int min_priority = -128;
  int max_priority = 127;
  std::vector<std::string> kernels;  ///< allowed kernels; empty = all
  std::int64_t inflight_jobs = -1;   ///< -1: unknown (Redis unreachable)
  std::int64_t inflight_bytes = -1;
  double rate_tokens = -1;               ///< tokens left; -1: unknown or no rate limit
  std::uint64_t max_resident_bytes = 0;  ///< actors' resident tensors, all actors together; 0 = no limit
  std::uint32_t max_job_ms = 0;          ///< longest a job may run on a worker
};

/// An actor as Redis and its broker know it (bridgectl actor show).
struct BRIDGE_API ActorInfo {
  std::string tenant;
  std::string actor_id;
  bool found = false;  ///< false: the actor has never saved state
  std::uint64_t version = 0;
  std::string worker_id;  ///< where it is active; empty: not active
  struct Resident {
    std::string name;
    DType dtype = DType::kF32;
    Shape shape;
    std::uint64_t bytes = 0;
  };
  std::vector<Resident> resident;
  std::uint64_t resident_bytes = 0;         ///< this actor's tensors
  std::uint64_t tenant_resident_bytes = 0;  ///< all of the tenant's actors
  std::int64_t updated_unix_ms = 0;
  /// Non-zero: Redis lost the actor's state, which had reached this version (calls are DATA_LOSS
  /// until Actor::reset()).
  std::uint64_t lost_version = 0;
};

struct BRIDGE_API QuotaReport {
  std::vector<TenantQuotaInfo> tenants;
  std::string tenants_file;
  std::int64_t loaded_at_unix_ms = 0;  ///< when the broker last applied tenants_file
};

struct BRIDGE_API FleetStatus {
  std::string broker_id;
  std::vector<WorkerInfo> workers;
  std::uint32_t queued_jobs = 0;
  std::uint32_t inflight_jobs = 0;
  bool redis_connected = false;
  std::uint32_t default_timeout_ms = 0;  ///< the broker's timeout for jobs that set none
};

}  // namespace bridge
