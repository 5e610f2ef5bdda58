#include "bridge/broker/scheduler.hpp"

#include <algorithm>

namespace bridge::broker {

void Scheduler::set_weight(const std::string& tenant, double weight) {
  tenants_[tenant].weight = weight > 0 ? weight : 1;
}

void Scheduler::enqueue(std::unique_ptr<Job> job) { push(std::move(job), false); }
void Scheduler::requeue(std::unique_ptr<Job> job) { push(std::move(job), true); }

void Scheduler::push(std::unique_ptr<Job> job, bool front) {
  const std::uint64_t key = job->key;
  // Entries of jobs that left through next() stay in the heap until their deadline; rebuild it when
  // they outnumber the live ones, so that it stays O(queued jobs).
  if (deadlines_.size() > 2 * jobs_.size() + 1024) {
    deadlines_ = {};
    for (const auto& [k, queued] : jobs_) deadlines_.emplace(queued->deadline, k);
  }
  deadlines_.emplace(job->deadline, key);
  TenantQueue& tenant = tenants_[job->tenant];
  if (tenant.queued == 0) tenant.virtual_time = std::max(tenant.virtual_time, virtual_clock_);
  ++tenant.queued;
  auto& queue = tenant.by_priority[job->priority];
  if (front) {
    queue.push_front(key);
  } else {
    queue.push_back(key);
  }
  jobs_.emplace(key, std::move(job));
}

std::unique_ptr<Job> Scheduler::take_from(TenantQueue& tenant, const std::function<bool(const Job&)>& fits) {
  std::size_t scanned = 0;
  for (auto level = tenant.by_priority.begin(); level != tenant.by_priority.end() && scanned < kScanDepth;) {
    auto& queue = level->second;
    for (auto it = queue.begin(); it != queue.end() && scanned < kScanDepth;) {
      auto found = jobs_.find(*it);
      if (found == jobs_.end()) {  // left already (expired)
        it = queue.erase(it);
        continue;
      }
      ++scanned;
      if (!fits(*found->second)) {
        ++it;
        continue;
      }
      std::unique_ptr<Job> job = std::move(found->second);
      jobs_.erase(found);
      queue.erase(it);
      if (queue.empty()) tenant.by_priority.erase(level);
      return job;
    }
    level = queue.empty() ? tenant.by_priority.erase(level) : std::next(level);
  }
  return nullptr;
}

std::unique_ptr<Job> Scheduler::next(const std::function<bool(const Job&)>& fits) {
  if (jobs_.empty()) return nullptr;
  // Backlogged tenants by virtual time (few tenants: a sort per call is cheaper than keeping a heap
  // coherent with weights that change on reload).
  std::vector<std::pair<double, TenantQueue*>> order;
  for (auto& [name, tenant] : tenants_)
    if (tenant.queued > 0) order.emplace_back(tenant.virtual_time, &tenant);
  std::stable_sort(order.begin(), order.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  for (auto& [time, tenant] : order) {
    if (auto job = take_from(*tenant, fits)) {
      --tenant->queued;
      virtual_clock_ = tenant->virtual_time;
      tenant->virtual_time += 1.0 / tenant->weight;
      return job;
    }
  }
  return nullptr;
}

std::vector<std::unique_ptr<Job>> Scheduler::take_expired(Clock::time_point now) {
  std::vector<std::unique_ptr<Job>> expired;
  while (!deadlines_.empty() && deadlines_.top().first <= now) {
    auto found = jobs_.find(deadlines_.top().second);
    deadlines_.pop();
    // A stale entry (job dispatched meanwhile, or re-queued with a new entry) is skipped.
    if (found == jobs_.end() || found->second->deadline > now) continue;
    --tenants_[found->second->tenant].queued;
    expired.push_back(std::move(found->second));
    jobs_.erase(found);
  }
  return expired;
}

std::vector<std::unique_ptr<Job>> Scheduler::take_all() {
  std::vector<std::unique_ptr<Job>> all;
  for (auto& [key, job] : jobs_) all.push_back(std::move(job));
  jobs_.clear();
  for (auto& [name, tenant] : tenants_) {
    tenant.by_priority.clear();
    tenant.queued = 0;
  }
  deadlines_ = {};
  return all;
}

}  // namespace bridge::broker
