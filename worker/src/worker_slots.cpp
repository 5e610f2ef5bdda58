// WorkerService's slots: jobs run at most `slots` at once, prefetched ones wait for a slot, and
// stopping a job (its batch with it once no member is wanted).
#include <algorithm>
#include <iterator>
#include <utility>

#include "bridge/worker/worker_service.hpp"

namespace bridge::worker {

void WorkerService::launch(std::unique_ptr<Execution> execution) {
  {
    std::lock_guard lock(slots_mutex_);
    if (started_ >= options_.slots) {
      // Stopped already (in the batcher, or at a deadline just looked at): answered from the queue
      // at the next look, not when a slot frees.
      const auto stopped = [](const auto& e) { return e->cancel->requested(); };
      if (execution->cancel->requested() || std::any_of(execution->members.begin(), execution->members.end(), stopped))
        stops_to_answer_ = true;
      return waiting_.push_back(std::move(execution));
    }
  }
  // Only this thread takes a free slot, so it is still free here.
  arm_run_limit(*execution);
  if (backend_->run_inline(*execution)) {
    execution->release_working_memory();
    return answer_finished(std::move(execution));
  }
  {
    std::lock_guard lock(slots_mutex_);
    ++started_;
  }
  backend_->execute(std::move(execution), completion_);
}

void WorkerService::stop(Running& job, StatusCode code, const std::string& message) {
  job.cancel->request(code, message);
  stops_to_answer_ = true;
  if (!job.batch) return;
  const auto& members = job.batch->members;
  if (std::all_of(members.begin(), members.end(), [](const auto& c) { return c->requested(); }))
    job.batch->combined->request(code, "every job of its batch was stopped (" + message + ")");
}

void WorkerService::link_batch(const Execution& combined) {
  if (combined.members.empty()) return;
  auto link = std::make_shared<BatchStop>();
  link->combined = combined.cancel;
  for (const auto& member : combined.members) {
    link->members.push_back(member->cancel);
    if (auto it = running_.find(member->dispatch_id); it != running_.end()) it->second.batch = link;
  }
  // Every member stopped already (while it waited for company in the batcher): so is the batch.
  const auto& first = *combined.members.front()->cancel;
  if (std::all_of(link->members.begin(), link->members.end(), [](const auto& c) { return c->requested(); }))
    combined.cancel->request(first.status().code(),
                             "every job of its batch was stopped (" + first.status().message() + ")");
}

void WorkerService::stop_everything() {
  std::deque<std::unique_ptr<Execution>> dropped;
  {
    std::unique_lock lock(slots_mutex_);
    dropped.swap(waiting_);  // a job that ends from now on frees its slot to nobody
    // A hand-over already under way reaches the backend before this returns, so that the backend's
    // wait for idle, next, counts it.
    handed_over_.wait(lock, [this] { return handing_over_ == 0; });
  }
  for (auto& [dispatch_id, job] : running_) stop(job, StatusCode::kCancelled, "the worker shut down");
}

void WorkerService::arm_run_limit(Execution& execution) {
  const auto now = Clock::now();
  const auto arm = [now](Execution& e) {
    if (e.max_run.count() > 0) e.cancel->limit_run(now + e.max_run);
  };
  arm(execution);
  for (auto& member : execution.members) arm(*member);  // each member's stop is its own (a batch)
}

void WorkerService::answer_stopped_waiting() {
  if (!std::exchange(stops_to_answer_, false)) return;  // nothing was stopped since the last look
  const auto running_on = [](const std::unique_ptr<Execution>& e) { return !e->cancel->requested(); };
  DynamicBatcher::Group answered;  // jobs, batch members included
  {
    std::lock_guard lock(slots_mutex_);
    for (auto it = waiting_.begin(); it != waiting_.end();) {
      std::unique_ptr<Execution>& waiting = *it;
      if (waiting->members.empty()) {
        if (running_on(waiting)) {
          ++it;
        } else {
          answered.push_back(std::move(waiting));
          it = waiting_.erase(it);
        }
        continue;
      }
      // A batch: its stopped members leave it now (the broker waits for their answers to free their
      // credits), and the rest wait on, stacked again without them.
      auto& members = waiting->members;
      const auto stopped = std::stable_partition(members.begin(), members.end(), running_on);
      if (stopped == members.end()) {
        ++it;
        continue;
      }
      std::move(stopped, members.end(), std::back_inserter(answered));
      members.erase(stopped, members.end());
      if (members.empty()) {
        it = waiting_.erase(it);
        continue;
      }
      waiting = stack_batch(std::move(members));
      if (waiting->members.empty()) {
        if (auto job = running_.find(waiting->dispatch_id); job != running_.end()) job->second.batch.reset();
      } else {
        link_batch(*waiting);
      }
      ++it;
    }
  }
  for (auto& job : answered) {
    job->status = job->cancel->status();
    answer_finished(std::move(job));
  }
}

}  // namespace bridge::worker
