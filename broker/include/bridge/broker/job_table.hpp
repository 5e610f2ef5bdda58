#pragma once
/// @file JobTable: the one owner of every job a broker holds, its state and its deadline.

#include <array>
#include <cstddef>
#include <functional>
#include <memory>
#include <queue>
#include <string>
#include <unordered_map>
#include <vector>

#include "bridge/broker/job.hpp"

namespace bridge::broker {

/// Owns every job from verification to its end. The scheduler, the worker registry and the actor
/// table refer to jobs (Job*) while the job's state says they hold it; nothing else frees a job.
/// Also the broker's one deadline timer: overdue() hands back jobs whose deadline (or run
/// deadline) passed, whatever their state, so every deadline is answered from one place.
/// Not thread-safe: the broker's loop thread only.
class JobTable {
 public:
  /// Takes `job` (state kAdmitting unless set otherwise). nullptr if the client already has a job
  /// of that id in the broker not answered yet: the duplicate is dropped and the first one answers.
  Job* add(std::unique_ptr<Job> job);
  Job* find(std::uint64_t key);
  /// The job `client` knows as `client_job_id`, if held and not answered yet.
  Job* find(const std::string& client, std::uint64_t client_job_id);
  /// Moves `job` to `state`, keeping the counts per state.
  void set_state(Job& job, JobState state);
  /// Destroys `job`. Whoever calls it has released everything the job held.
  void erase(Job& job);

  /// Arms the timer for `job` at job.due(); call again when the job's due() moves earlier.
  void watch(const Job& job);
  /// Keys of the jobs whose due() is at or before `now`, each once; oldest first.
  /// Keys, not pointers: answering one job may end another (look each up again with find()).
  std::vector<std::uint64_t> overdue(Clock::time_point now);
  /// When the earliest armed timer falls due; time_point::max() when none is armed.
  Clock::time_point next_due() const;

  std::size_t size() const { return jobs_.size(); }
  std::size_t count(JobState state) const { return counts_[static_cast<std::size_t>(state)]; }
  /// Jobs not yet on a worker: waiting for a turn, admission, actor state or a slot.
  std::size_t waiting() const;
  /// Every job (shutdown, status), in no particular order.
  std::vector<Job*> all() const;

 private:
  static std::string client_key(const std::string& client, std::uint64_t job_id);
  void unindex(const Job& job);

  std::unordered_map<std::uint64_t, std::unique_ptr<Job>> jobs_;
  std::unordered_map<std::string, std::uint64_t> by_client_;  // "<client>/<job id>" -> key
  std::array<std::size_t, 7> counts_{};
  using Timer = std::pair<Clock::time_point, std::uint64_t>;
  std::priority_queue<Timer, std::vector<Timer>, std::greater<>> timers_;
};

}  // namespace bridge::broker
