// check_request (request_checks.hpp): the refusals that need no Redis, in the order they are judged.
#include "bridge/broker/request_checks.hpp"

#include <algorithm>
#include <vector>

namespace bridge::broker {

Status check_request(const Job& job, const TenantTable& tenants, const WorkerRegistry& workers, std::size_t waiting,
                     const RequestCheckOptions& options, std::uint32_t& retry_after_ms) {
  const TenantQuota* quota = tenants.find(job.tenant);
  if (quota == nullptr)
    return {StatusCode::kUnknownTenant, "tenant '" + job.tenant + "' is not configured in " + options.tenants_file +
                                            "; ask the fleet operator to add it"};
  for (const auto& kernel : job.kernels)
    if (!quota->allows_kernel(kernel))
      return {StatusCode::kPermissionDenied, "tenant '" + job.tenant + "' may not run kernel '" + kernel +
                                                 "' (its kernels in " + options.tenants_file + ": " +
                                                 comma_joined(quota->kernels) + ")"};
  if (job.priority < quota->min_priority || job.priority > quota->max_priority)
    return {StatusCode::kPermissionDenied,
            "tenant '" + job.tenant + "' may use priorities " + std::to_string(quota->min_priority) + ".." +
                std::to_string(quota->max_priority) + ", not " + std::to_string(job.priority)};
  if (job.payload_bytes > quota->max_inflight_bytes)
    return {StatusCode::kTooLarge, "the job's inputs are " + std::to_string(job.payload_bytes) +
                                       " bytes, more than tenant '" + job.tenant +
                                       "' may have in flight (max_inflight_bytes " +
                                       std::to_string(quota->max_inflight_bytes) + ")"};
  for (const auto& kernel : job.kernels) {
    if (workers.empty() || workers.any_has_kernel(kernel)) continue;
    std::vector<std::string> known;
    for (const auto& [id, w] : workers.workers())
      for (const auto& k : w.kernels)
        if (std::find(known.begin(), known.end(), k) == known.end()) known.push_back(k);
    std::sort(known.begin(), known.end());
    return {StatusCode::kUnknownKernel,
            "no worker in the fleet has kernel '" + kernel + "'; available: " + comma_joined(known)};
  }
  if (!workers.empty() && !workers.could_run(job.kernels, job.placement))
    return {StatusCode::kNoCapableWorker,
            std::string("no worker can run '") + comma_joined(job.kernels) + "' with placement " +
                placement_name(job.placement) +
                (job.kernels.size() > 1 ? " (no worker of that device kind has every kernel of the pipeline)"
                                        : " (no worker of that device kind has it)")};
  // This job is counted among the waiting already.
  if (waiting > options.max_queued_jobs) {
    retry_after_ms = options.retry_after_ms;
    return {StatusCode::kQueueFull, "the broker holds " + std::to_string(options.max_queued_jobs) +
                                        " waiting jobs (max_queued_jobs); retry later"};
  }
  return {};
}

}  // namespace bridge::broker
