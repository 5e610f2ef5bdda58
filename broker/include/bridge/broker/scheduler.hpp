#pragma once
/// @file Scheduler: the jobs waiting in a broker for a worker slot.

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <queue>
#include <string>
#include <unordered_map>
#include <vector>

#include "bridge/broker/job.hpp"

namespace bridge::broker {

/// Owns queued jobs. Tenants take turns (round robin), so one tenant's backlog cannot starve another;
/// within a tenant, jobs leave in arrival order, except that re-queued jobs (their worker died) go first.
/// Jobs past their deadline are handed back by take_expired(). Not thread-safe: loop thread only.
class Scheduler {
 public:
  /// How far into one tenant's queue next() looks for a job the offered worker can run.
  static constexpr std::size_t kScanDepth = 32;

  void enqueue(std::unique_ptr<Job> job);
  /// For a job whose worker was lost: ahead of the tenant's other jobs.
  void requeue(std::unique_ptr<Job> job);

  /// Removes and returns the next job for which `fits` is true, visiting tenants in turn; nullptr if
  /// no queued job fits.
  std::unique_ptr<Job> next(const std::function<bool(const Job&)>& fits);

  /// Removes and returns every job whose deadline is at or before `now`.
  std::vector<std::unique_ptr<Job>> take_expired(Clock::time_point now);
  /// Removes and returns every job (shutdown).
  std::vector<std::unique_ptr<Job>> take_all();

  std::size_t size() const { return jobs_.size(); }
  bool empty() const { return jobs_.empty(); }

 private:
  void push(std::unique_ptr<Job> job, bool front);

  // Queues hold keys; a key whose job already left (expired) is skipped and dropped when met.
  std::unordered_map<std::uint64_t, std::unique_ptr<Job>> jobs_;
  std::map<std::string, std::deque<std::uint64_t>> queues_;  // by tenant
  std::string last_served_;                                  // round-robin position
  using DeadlineEntry = std::pair<Clock::time_point, std::uint64_t>;
  std::priority_queue<DeadlineEntry, std::vector<DeadlineEntry>, std::greater<>> deadlines_;
};

}  // namespace bridge::broker
