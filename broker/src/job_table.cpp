#include "bridge/broker/job_table.hpp"

#include <unordered_set>

namespace bridge::broker {

const char* job_state_name(JobState state) {
  switch (state) {
    case JobState::kWaitingTurn: return "waiting-turn";
    case JobState::kAdmitting: return "admitting";
    case JobState::kLoadingActor: return "loading-actor";
    case JobState::kQueued: return "queued";
    case JobState::kRunning: return "running";
    case JobState::kWritingThrough: return "writing-through";
    case JobState::kCancelling: return "cancelling";
  }
  return "?";
}

std::string comma_joined(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& s : items) out += (out.empty() ? "" : ", ") + s;
  return out;
}

std::string JobTable::client_key(const std::string& client, std::uint64_t job_id) {
  return client + "/" + std::to_string(job_id);
}

Job* JobTable::add(std::unique_ptr<Job> job) {
  if (!by_client_.emplace(client_key(job->client, job->client_job_id), job->key).second) return nullptr;
  Job* raw = job.get();
  ++counts_[static_cast<std::size_t>(raw->state)];
  jobs_.emplace(raw->key, std::move(job));
  watch(*raw);
  return raw;
}

Job* JobTable::find(std::uint64_t key) {
  auto it = jobs_.find(key);
  return it == jobs_.end() ? nullptr : it->second.get();
}

Job* JobTable::find(const std::string& client, std::uint64_t client_job_id) {
  auto it = by_client_.find(client_key(client, client_job_id));
  return it == by_client_.end() ? nullptr : find(it->second);
}

void JobTable::set_state(Job& job, JobState state) {
  --counts_[static_cast<std::size_t>(job.state)];
  ++counts_[static_cast<std::size_t>(state)];
  job.state = state;
  // Answered: the client may send the same id again (a retry), which is a new job, although this
  // one still waits for its worker to let go.
  if (state == JobState::kCancelling) unindex(job);
}

void JobTable::unindex(const Job& job) {
  auto it = by_client_.find(client_key(job.client, job.client_job_id));
  if (it != by_client_.end() && it->second == job.key) by_client_.erase(it);
}

void JobTable::erase(Job& job) {
  --counts_[static_cast<std::size_t>(job.state)];
  unindex(job);
  jobs_.erase(job.key);  // destroys `job`
  // Timers of ended jobs stay until they fall due; rebuild when they outnumber the jobs.
  if (timers_.size() > 4 * jobs_.size() + 1024) {
    timers_ = {};
    for (const auto& [key, held] : jobs_) timers_.emplace(held->due(), key);
  }
}

void JobTable::watch(const Job& job) {
  if (job.due() != Clock::time_point::max()) timers_.emplace(job.due(), job.key);
}

std::vector<std::uint64_t> JobTable::overdue(Clock::time_point now) {
  std::vector<std::uint64_t> out;
  std::unordered_set<std::uint64_t> seen;
  while (!timers_.empty() && timers_.top().first <= now) {
    const auto [when, key] = timers_.top();
    timers_.pop();
    Job* job = find(key);
    // Stale timers: the job ended, or its due time moved (a new timer is armed).
    if (job == nullptr || job->due() != when) continue;
    // A job armed twice for one time (its step limit moved past its deadline) is handed back once.
    if (seen.insert(key).second) out.push_back(key);
  }
  return out;
}

Clock::time_point JobTable::next_due() const {
  return timers_.empty() ? Clock::time_point::max() : timers_.top().first;
}

std::size_t JobTable::waiting() const {
  return count(JobState::kWaitingTurn) + count(JobState::kAdmitting) + count(JobState::kLoadingActor) +
         count(JobState::kQueued);
}

std::vector<Job*> JobTable::all() const {
  std::vector<Job*> out;
  out.reserve(jobs_.size());
  for (const auto& [key, job] : jobs_) out.push_back(job.get());
  return out;
}

}  // namespace bridge::broker
