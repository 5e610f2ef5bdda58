#pragma once
/// @file Admission: a verified job takes a unit of its tenant's quota, or is refused naming the limit.

#include <chrono>
#include <cstdint>
#include <string>

#include "bridge/broker/job_table.hpp"
#include "bridge/broker/quota_leases.hpp"
#include "bridge/broker/tenants.hpp"
#include "bridge/status.hpp"

namespace bridge::broker {

/// Admits a job against its tenant's quotas through QuotaLeases: most jobs at once from this
/// broker's lease, others when Redis has answered (Admitting, bounded by admission_timeout_ms).
/// A refusal is RESOURCE_EXHAUSTED with the limit, the tenant's count and when to retry; a store
/// that cannot decide is UNAVAILABLE. A grant that arrives after its job ended is handed back.
/// It touches no socket: the broker is its Host, QuotaLeases its store, so it is unit-tested with
/// an in-memory LeaseStore. Loop thread only.
class Admission {
 public:
  class Host {
   public:
    /// The job holds a unit of its tenant's quota (or quotas are not enforced): route it, or start
    /// its actor call.
    virtual void admitted(Job& job) = 0;
    virtual void fail(Job& job, const Status& status, std::uint32_t retry_after_ms) = 0;
    /// For metrics: a refusal by `limit` (max_inflight_jobs | max_inflight_bytes | rate).
    virtual void quota_refused(const std::string& tenant, const std::string& limit) = 0;

   protected:
    ~Host() = default;
  };

  struct Options {
    bool enforce_quotas = true;
    std::uint32_t admission_timeout_ms = 2000;
    std::uint32_t retry_after_ms = 1000;  ///< the retry hint of refusals that have none of their own
    std::string tenants_file;             ///< for messages
    std::string store_name;               ///< where quotas live, for messages
    std::chrono::milliseconds lease_ttl{3000};  ///< how long this broker's leases outlive it
  };

  /// `tenants` is read at each admission: a reloaded table applies to the next job.
  Admission(Options options, const TenantTable& tenants, JobTable& jobs, QuotaLeases& leases, Host& host);

  /// Takes the job's quota (once: a job that holds it, such as an actor call sent again after its
  /// worker was lost, is admitted at once), then Host::admitted(); or answers it through Host::fail().
  void admit(Job& job);
  /// The job is ending: the unit of quota it holds, if any, goes back to the lease.
  void ended(Job& job);

 private:
  void on_decision(std::uint64_t key, const std::string& tenant, std::uint64_t bytes,
                   const LeaseStore::Decision& decision);
  void refuse(Job& job, const LeaseStore::Decision& decision);
  void admitted(Job& job);

  Options options_;
  const TenantTable& tenants_;
  JobTable& jobs_;
  QuotaLeases& leases_;
  Host& host_;
};

}  // namespace bridge::broker
