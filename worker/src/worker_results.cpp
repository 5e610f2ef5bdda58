// WorkerService's answers to the broker: results (returned and kept outputs) and errors; and a
// finished job's slot, handed to the oldest waiting job.
#include <spdlog/spdlog.h>

#include "bridge/core/job_codec.hpp"
#include "bridge/core/protocol_jobs.hpp"
#include "bridge/worker/worker_service.hpp"

namespace bridge::worker {

void WorkerService::answer_error(std::uint64_t dispatch_id, const Status& status) {
  spdlog::warn("job dispatch {} refused: {}", dispatch_id, status.to_string());
  auto execution = std::make_unique<Execution>();
  execution->dispatch_id = dispatch_id;
  execution->status = status;
  core::Frames frames;
  frames.push_back(result_header(*execution, {}, {}, {}));
  send_answer(frames);
}

void WorkerService::on_complete(std::unique_ptr<Execution> execution) {
  std::unique_ptr<Execution> next;
  {
    std::lock_guard lock(slots_mutex_);
    if (waiting_.empty()) {
      --started_;
    } else {  // the slot passes to the oldest waiting job, from here
      next = std::move(waiting_.front());
      waiting_.pop_front();
      ++handing_over_;
    }
  }
  if (next) {
    // Counted down however execute() ends, so that a shutdown waiting for it is not left waiting.
    struct HandedOver {
      WorkerService& service;
      ~HandedOver() {
        std::lock_guard lock(service.slots_mutex_);
        if (--service.handing_over_ == 0) service.handed_over_.notify_all();
      }
    } handed_over{*this};
    arm_run_limit(*next);
    backend_->execute(std::move(next), completion_);
  }
  execution->release_working_memory();  // here, on the backend's thread
  {
    std::lock_guard lock(completed_mutex_);
    completed_.push_back(std::move(execution));
  }
  completed_signal_.notify();
}

void WorkerService::send_completed() {
  std::vector<std::unique_ptr<Execution>> finished;
  {
    std::lock_guard lock(completed_mutex_);
    finished.swap(completed_);
  }
  for (auto& execution : finished) answer_finished(std::move(execution));
}

void WorkerService::answer_finished(std::unique_ptr<Execution> execution) {
  for (auto& member : unstack_batch(std::move(execution))) {
    --inflight_;
    running_.erase(member->dispatch_id);
    if (orphaned_.erase(member->dispatch_id) > 0) continue;  // its broker was left: nobody waits for it
    send_result(*member);
  }
}

void WorkerService::send_result(Execution& execution) {
  std::vector<Tensor> returned, kept;
  if (execution.status.is_ok()) {
    std::vector<Tensor>& result = execution.result();
    for (std::size_t i = 0; i < result.size(); ++i) {
      const bool keep = i < execution.keep_outputs.size() && !execution.keep_outputs[i].empty();
      if (!keep) {
        returned.push_back(result[i]);
        continue;
      }
      result[i].set_name(execution.keep_outputs[i]);
      kept.push_back(result[i]);
    }
    if (!execution.actor.empty() && !kept.empty()) {
      // The activation moves on with the call; the broker writes the kept tensors through to Redis
      // (and deactivates this copy if that fails, so that it is never used ahead of Redis).
      ++execution.actor_version;
      if (Activation* activation = actors_.find(execution.actor)) {
        activation->version = execution.actor_version;
        for (const Tensor& t : kept) activation->keep(t.name(), t);
      }
    }
  } else if (execution.kernel != nullptr) {
    spdlog::warn("job {} of tenant {} (dispatch {}, {}) failed: {}", execution.job_id, execution.tenant,
                 execution.dispatch_id, execution.kernel->name, execution.status.to_string());
  }
  metrics_.answered(execution, execution.ran_on != nullptr ? *execution.ran_on : backend_->device());
  // Inline outputs stay well inside the header limit, which the broker's is taken to equal.
  std::vector<bool> inlined =
      core::choose_inline(returned, execution.inline_outputs,
                          std::min<std::uint64_t>(core::kInlineBudgetBytes, options_.limits.max_header_bytes / 4));
  core::Frames frames;
  frames.push_back(result_header(execution, returned, inlined, kept));
  for (std::size_t i = 0; i < returned.size(); ++i)
    if (!inlined[i]) frames.push_back(core::tensor_to_frame(returned[i]));
  for (const Tensor& t : kept) frames.push_back(core::tensor_to_frame(t));
  send_answer(frames);
}

zmq::message_t WorkerService::result_header(const Execution& execution, std::span<const Tensor> returned,
                                            std::vector<bool> inlined, std::span<const Tensor> kept) {
  core::protocol::ResultHeader header{.dispatch_id = execution.dispatch_id,
                                      .status = execution.status,
                                      .returned = returned,
                                      .inline_returned = std::move(inlined),
                                      .kept = kept,
                                      .worker_id = id_,
                                      .device = execution.ran_on != nullptr ? execution.ran_on : &backend_->device(),
                                      .fallback_reason = execution.fallback_reason,
                                      .transfer_us = execution.transfer_us,
                                      .compute_us = execution.compute_us,
                                      .batch_size = execution.batch_size,
                                      .actor_version = execution.actor_version};
  if (execution.step_count() > 1 && execution.step_compute_us.size() == execution.step_count())
    for (std::size_t i = 0; i < execution.step_count(); ++i)
      header.stages.push_back({execution.step_kernel(i).name, std::chrono::microseconds(execution.step_compute_us[i])});
  return core::protocol::encode(header);
}

std::vector<std::uint64_t> WorkerService::running_dispatches() const {
  std::vector<std::uint64_t> ids;
  ids.reserve(running_.size());
  // Not those being stopped for a broker left behind: their results are dropped, and no broker
  // holds them.
  for (const auto& [dispatch_id, job] : running_)
    if (!orphaned_.contains(dispatch_id)) ids.push_back(dispatch_id);
  return ids;
}

}  // namespace bridge::worker
