#include "bridge/broker/scheduler.hpp"

#include <algorithm>

namespace bridge::broker {

void Scheduler::set_weight(const std::string& tenant, double weight) {
  tenants_[tenant].weight = weight > 0 ? weight : 1;
}

void Scheduler::enqueue(Job& job) { push(job, false); }
void Scheduler::requeue(Job& job) { push(job, true); }

void Scheduler::push(Job& job, bool front) {
  TenantQueue& tenant = tenants_[job.tenant];
  if (tenant.queued == 0) tenant.virtual_time = std::max(tenant.virtual_time, virtual_clock_);
  ++tenant.queued;
  auto& queue = tenant.by_priority[job.priority];
  if (front) {
    queue.push_front(job.key);
  } else {
    queue.push_back(job.key);
  }
  jobs_.emplace(job.key, &job);
}

void Scheduler::remove(const Job& job) {
  // The key stays in its deque until a scan meets it; take_from() skips keys no longer queued.
  if (jobs_.erase(job.key) > 0) --tenants_[job.tenant].queued;
}

Job* Scheduler::take_from(TenantQueue& tenant, const std::function<bool(const Job&)>& fits) {
  std::size_t scanned = 0;
  for (auto level = tenant.by_priority.begin(); level != tenant.by_priority.end() && scanned < kScanDepth;) {
    auto& queue = level->second;
    for (auto it = queue.begin(); it != queue.end() && scanned < kScanDepth;) {
      auto found = jobs_.find(*it);
      if (found == jobs_.end()) {  // removed meanwhile
        it = queue.erase(it);
        continue;
      }
      ++scanned;
      if (!fits(*found->second)) {
        ++it;
        continue;
      }
      Job* job = found->second;
      jobs_.erase(found);
      queue.erase(it);
      if (queue.empty()) tenant.by_priority.erase(level);
      return job;
    }
    level = queue.empty() ? tenant.by_priority.erase(level) : std::next(level);
  }
  return nullptr;
}

Job* Scheduler::next(const std::function<bool(const Job&)>& fits) {
  if (jobs_.empty()) return nullptr;
  // Backlogged tenants by virtual time (few tenants: a sort per call is cheaper than keeping a heap
  // coherent with weights that change on reload).
  std::vector<std::pair<double, TenantQueue*>> order;
  for (auto& [name, tenant] : tenants_)
    if (tenant.queued > 0) order.emplace_back(tenant.virtual_time, &tenant);
  std::stable_sort(order.begin(), order.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  for (auto& [time, tenant] : order) {
    if (Job* job = take_from(*tenant, fits)) {
      --tenant->queued;
      virtual_clock_ = tenant->virtual_time;
      tenant->virtual_time += 1.0 / tenant->weight;
      return job;
    }
  }
  return nullptr;
}

}  // namespace bridge::broker
