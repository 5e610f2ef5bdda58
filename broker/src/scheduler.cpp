#include "bridge/broker/scheduler.hpp"

namespace bridge::broker {

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
  auto& queue = queues_[job->tenant];
  if (front) {
    queue.push_front(key);
  } else {
    queue.push_back(key);
  }
  jobs_.emplace(key, std::move(job));
}

std::unique_ptr<Job> Scheduler::next(const std::function<bool(const Job&)>& fits) {
  if (jobs_.empty() || queues_.empty()) return nullptr;
  // Start with the tenant after the one served last, wrapping around once.
  auto start = queues_.upper_bound(last_served_);
  for (std::size_t visited = 0; visited < queues_.size(); ++visited) {
    if (start == queues_.end()) start = queues_.begin();
    auto current = start++;
    auto& queue = current->second;
    std::size_t scanned = 0;
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
      last_served_ = current->first;
      if (queue.empty()) queues_.erase(current);
      return job;
    }
    if (queue.empty()) {
      // Only stale keys were left; drop the tenant's queue. `start` stays valid (map iterators).
      queues_.erase(current);
      if (queues_.empty()) break;
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
    expired.push_back(std::move(found->second));
    jobs_.erase(found);
  }
  return expired;
}

std::vector<std::unique_ptr<Job>> Scheduler::take_all() {
  std::vector<std::unique_ptr<Job>> all;
  for (auto& [key, job] : jobs_) all.push_back(std::move(job));
  jobs_.clear();
  queues_.clear();
  deadlines_ = {};
  return all;
}

}  // namespace bridge::broker
