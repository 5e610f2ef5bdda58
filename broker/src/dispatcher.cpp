#include "bridge/broker/dispatcher.hpp"

#include <algorithm>
#include <limits>

#include "bridge/core/endpoint.hpp"
#include "bridge/core/job_codec.hpp"
#include "bridge/core/protocol_jobs.hpp"

namespace bridge::broker {

Dispatcher::Dispatcher(JobTable& jobs, WorkerRegistry& workers, Scheduler& scheduler, Send send, MaxRun max_run,
                       Sent sent)
    : jobs_(jobs),
      workers_(workers),
      scheduler_(scheduler),
      send_(std::move(send)),
      max_run_(std::move(max_run)),
      sent_(std::move(sent)),
      next_dispatch_id_((core::random_u64() >> 2) + 1) {}  // 2^62 apart on average: never reached

void Dispatcher::route(Job& job) {
  if (scheduler_.empty())
    if (WorkerRecord* worker = workers_.select(job); worker != nullptr && dispatch(*worker, job)) return;
  jobs_.set_state(job, JobState::kQueued);
  scheduler_.enqueue(job);  // wait for a free slot, behind jobs already waiting
}

void Dispatcher::dispatch_queued() {
  // Idle slots first, on every worker; only then the workers' prefetch queues, one place per worker
  // per round, so that a job does not wait behind another on one worker while a slot is idle on the
  // next, and the queues fill evenly.
  for (const bool with_prefetch : {false, true}) {
    bool progress = true;
    while (progress && !scheduler_.empty()) {
      progress = false;
      for (auto& [id, worker] : workers_.workers()) {
        WorkerRecord& w = worker;
        const std::size_t per_round = with_prefetch ? 1 : std::numeric_limits<std::size_t>::max();
        for (std::size_t taken = 0; taken < per_round && w.has_free_credit(with_prefetch) && !scheduler_.empty();
             ++taken) {
          Job* job = scheduler_.next([&](const Job& j) { return workers_.can_take(w, j); });
          if (job == nullptr) break;
          if (!dispatch(w, *job)) {
            scheduler_.requeue(*job);
            return;  // the worker vanished; the liveness check will remove it
          }
          progress = true;
        }
      }
    }
  }
}

bool Dispatcher::dispatch(WorkerRecord& worker, Job& job) {
  const auto now = Clock::now();
  // The worker stops the job at its deadline, or once it has run for its tenant's max_job_ms. A job
  // sent to wait on the worker (every slot there is taken: prefetch) starts at the latest once every
  // job already there is due and stopped, so the broker's own timer for max_job_ms (a backstop for a
  // worker that does not stop it) runs from then.
  const std::chrono::milliseconds max_run = max_run_(job);
  Clock::time_point starts_by = now;
  if (worker.inflight.size() >= worker.slots) {
    for (const auto& [id, ahead] : worker.inflight) starts_by = std::max(starts_by, ahead->due());
    if (starts_by < Clock::time_point::max() - stop_allowance_) starts_by += stop_allowance_;
  }
  const Clock::time_point stop_at =
      starts_by >= job.deadline - max_run ? job.deadline : starts_by + max_run;  // no overflow past max()
  const std::uint64_t dispatch_id = next_dispatch_id_;
  constexpr std::int64_t kMaxMs = std::numeric_limits<std::uint32_t>::max();
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(job.deadline - now).count();
  const core::protocol::DispatchHeader header{
      .dispatch_id = dispatch_id,
      .deadline_ms = static_cast<std::uint32_t>(std::clamp<std::int64_t>(left, 1, kMaxMs)),
      .actor = job.actor,
      .actor_version = job.actor_version,
      .activate = job.activate,
      .activation = job.activation,
      .max_run_ms = static_cast<std::uint32_t>(std::clamp<std::int64_t>(max_run.count(), 0, kMaxMs)),
      .request = job.frames[0].size() <= embedded_request_bytes_
                     ? std::span(static_cast<const std::uint8_t*>(job.frames[0].data()), job.frames[0].size())
                     : std::span<const std::uint8_t>(),
      .tenant = job.tenant};
  core::Frames frames;
  frames.reserve(2 + job.frames.size() + job.activation.size());
  frames.push_back(zmq::message_t(worker.route.data(), worker.route.size()));
  frames.push_back(core::protocol::encode(header));
  // Shares the bytes (reference-counted) rather than copying: the job keeps its frames in case the
  // worker dies and the job must be sent again.
  for (std::size_t i = header.request.empty() ? 0 : 1; i < job.frames.size(); ++i)
    frames.emplace_back().copy(job.frames[i]);
  if (job.activate)
    for (const Tensor& t : job.activation) frames.push_back(core::tensor_to_frame(t));
  if (!send_(frames)) return false;
  ++next_dispatch_id_;
  job.dispatch_id = dispatch_id;
  job.dispatched = now;
  ++job.attempts;
  job.worker = worker.id;
  if (stop_at < job.deadline) {
    job.step_deadline = stop_at;  // max_job_ms comes first: the timer answers it
    jobs_.watch(job);
  }
  jobs_.set_state(job, JobState::kRunning);
  worker.last_dispatch = now;
  worker.inflight.emplace(dispatch_id, &job);
  sent_(job, worker);
  return true;
}

}  // namespace bridge::broker
