#include "bridge/broker/admission.hpp"

#include <sstream>
#include <utility>

#include <spdlog/spdlog.h>

namespace bridge::broker {

Admission::Admission(Options options, const TenantTable& tenants, JobTable& jobs, QuotaLeases& leases, Host& host)
    : options_(std::move(options)), tenants_(tenants), jobs_(jobs), leases_(leases), host_(host) {}

void Admission::admit(Job& job) {
  const TenantQuota* quota = tenants_.find(job.tenant);
  if (quota == nullptr)
    return host_.fail(
        job, {StatusCode::kUnknownTenant, "tenant '" + job.tenant + "' was removed from " + options_.tenants_file}, 0);
  if (!options_.enforce_quotas || job.holds_quota) return admitted(job);
  const std::uint64_t key = job.key;
  const std::string tenant = job.tenant;
  const std::uint64_t bytes = job.payload_bytes;
  LeaseStore::Decision refusal;
  switch (leases_.admit(tenant, *quota, bytes, options_.lease_ttl,
                        [this, key, tenant, bytes](LeaseStore::Decision d) { on_decision(key, tenant, bytes, d); },
                        &refusal)) {
    case QuotaLeases::Admit::kNow:
      job.holds_quota = true;
      return admitted(job);
    case QuotaLeases::Admit::kLater:
      jobs_.set_state(job, JobState::kAdmitting);
      job.step_deadline = Clock::now() + std::chrono::milliseconds(options_.admission_timeout_ms);
      jobs_.watch(job);
      return;
    case QuotaLeases::Admit::kUnreachable:
      return host_.fail(
          job, {StatusCode::kUnavailable, "the quota store (" + options_.store_name + ") is unreachable; retry later"},
          options_.retry_after_ms);
    case QuotaLeases::Admit::kRefused:
      return refuse(job, refusal);
  }
}

void Admission::ended(Job& job) {
  if (!job.holds_quota) return;
  leases_.release(job.tenant, job.payload_bytes);
  job.holds_quota = false;
}

void Admission::on_decision(std::uint64_t key, const std::string& tenant, std::uint64_t bytes,
                            const LeaseStore::Decision& decision) {
  Job* job = jobs_.find(key);
  if (job == nullptr || job->state != JobState::kAdmitting) {
    // The job ended meanwhile (admission timeout, deadline, cancel, shutdown): hand back a slot
    // granted too late.
    if (decision.admitted) leases_.release(tenant, bytes);
    return;
  }
  job->step_deadline = Clock::time_point::max();
  if (!decision.reachable) {
    // Per job, so debug: the connection logs each change of Redis's state once (RedisConnection).
    spdlog::debug("quota check for tenant {} failed: {}", job->tenant,
                  decision.error.empty() ? "connection to Redis lost" : decision.error);
    return host_.fail(
        *job,
        {StatusCode::kUnavailable, "the quota store could not decide (" +
                                       (decision.error.empty() ? std::string("connection lost") : decision.error) +
                                       "); retry later"},
        options_.retry_after_ms);
  }
  if (!decision.admitted) return refuse(*job, decision);
  job->holds_quota = true;
  admitted(*job);
}

void Admission::refuse(Job& job, const LeaseStore::Decision& decision) {
  host_.quota_refused(job.tenant, decision.limit);
  const TenantQuota* quota = tenants_.find(job.tenant);
  const std::uint32_t retry_after = decision.retry_after_ms > 0 ? decision.retry_after_ms : options_.retry_after_ms;
  std::string why = "tenant '" + job.tenant + "' ";
  if (quota == nullptr) {
    why += "was removed from " + options_.tenants_file;
  } else if (decision.limit == "max_inflight_bytes") {
    why += "has " + std::to_string(decision.in_use) + " input bytes in flight; this job's " +
           std::to_string(job.payload_bytes) + " would pass its max_inflight_bytes of " +
           std::to_string(quota->max_inflight_bytes);
  } else if (decision.limit == "rate") {
    std::ostringstream rate;
    rate << quota->rate << " jobs/s (burst " << quota->effective_burst() << ")";
    why += "is over its rate of " + rate.str();
  } else {
    why += "has " + std::to_string(decision.in_use) + " jobs in flight, its max_inflight_jobs is " +
           std::to_string(quota->max_inflight_jobs);
  }
  host_.fail(job, {StatusCode::kResourceExhausted, why + "; retry after " + std::to_string(retry_after) + " ms"},
             retry_after);
}

void Admission::admitted(Job& job) {
  job.step_deadline = Clock::time_point::max();
  host_.admitted(job);
}

}  // namespace bridge::broker
