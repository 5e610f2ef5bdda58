#pragma once
/// @file The checks a request must pass before its quota is asked: what needs no Redis.

#include <cstdint>
#include <string>

#include "bridge/broker/job.hpp"
#include "bridge/broker/tenants.hpp"
#include "bridge/broker/worker_registry.hpp"
#include "bridge/status.hpp"

namespace bridge::broker {

struct RequestCheckOptions {
  std::string tenants_file;            ///< named in messages, so that the operator knows where to look
  std::uint32_t max_queued_jobs = 0;   ///< waiting jobs beyond which QUEUE_FULL
  std::uint32_t retry_after_ms = 0;    ///< advised with QUEUE_FULL
};

/// Tenant configured, kernels allowed, priority in range, inputs within the tenant's bytes, kernels
/// known to some worker, placement possible, room in the queue (`waiting` counts this job).
/// OK, or the refusal with a message that says what to fix; `retry_after_ms` is set for QUEUE_FULL.
/// With no worker registered yet, kernels and placement are not judged: the job waits for one.
Status check_request(const Job& job, const TenantTable& tenants, const WorkerRegistry& workers, std::size_t waiting,
                     const RequestCheckOptions& options, std::uint32_t& retry_after_ms);

}  // namespace bridge::broker
