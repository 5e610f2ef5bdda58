#pragma once
/// @file Scheduler: the jobs waiting in a broker for a worker slot.

#include <deque>
#include <functional>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include "bridge/broker/job.hpp"

namespace bridge::broker {

/// Holds the queued jobs (owned by JobTable) and decides which one goes next.
///
/// Across tenants: weighted fair queuing (start-time fair queuing). Each tenant has a virtual time
/// that grows by 1/weight per job it is served; the backlogged tenant with the smallest virtual time
/// goes next. A tenant that becomes backlogged starts at the current virtual time, so idleness is not
/// saved up as credit. With every tenant backlogged, jobs are served in proportion to the weights.
/// Within a tenant: higher priority first, then arrival order; re-queued jobs (their worker died) go
/// first within their priority. A job leaves through next() or remove() (its deadline passed, it
/// was cancelled); JobTable's timer, not the queue, watches deadlines. Not thread-safe: loop thread only.
class Scheduler {
 public:
  /// How far into one tenant's queue next() looks for a job the offered worker can run.
  static constexpr std::size_t kScanDepth = 32;

  /// Weight of a tenant (tenants.yaml `weight`); tenants never set weigh 1. Takes effect for the
  /// next job served.
  void set_weight(const std::string& tenant, double weight);

  void enqueue(Job& job);
  /// For a job whose worker was lost: ahead of the tenant's other jobs of the same priority.
  void requeue(Job& job);

  /// Removes and returns the next job for which `fits` is true; nullptr if no queued job fits.
  Job* next(const std::function<bool(const Job&)>& fits);
  /// Takes `job` out of the queue (a no-op if it is not queued).
  void remove(const Job& job);

  std::size_t size() const { return jobs_.size(); }
  bool empty() const { return jobs_.empty(); }

 private:
  struct TenantQueue {
    std::map<int, std::deque<std::uint64_t>, std::greater<>> by_priority;  // highest priority first
    double weight = 1;
    double virtual_time = 0;
    std::size_t queued = 0;  // live jobs (the deques may also hold keys of jobs removed since)
  };

  void push(Job& job, bool front);
  Job* take_from(TenantQueue& tenant, const std::function<bool(const Job&)>& fits);

  std::unordered_map<std::uint64_t, Job*> jobs_;  // queued, by key
  std::map<std::string, TenantQueue> tenants_;
  double virtual_clock_ = 0;  // start tag of the job served last
};

}  // namespace bridge::broker
