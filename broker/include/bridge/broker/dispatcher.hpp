#pragma once
/// @file Dispatcher: which waiting job goes to which worker, and the Dispatch message that sends it.

#include <chrono>
#include <cstdint>
#include <functional>

#include "bridge/broker/job_table.hpp"
#include "bridge/broker/scheduler.hpp"
#include "bridge/broker/worker_registry.hpp"
#include "bridge/core/wire.hpp"

namespace bridge::broker {

/// Puts admitted jobs on worker credits: at once when nothing waits before them and a worker can
/// take them, else in the Scheduler until a credit frees. Sending a job builds its Dispatch header
/// (the time it may run, its actor binding and activation state) ahead of the client's own frames,
/// shared, not copied, so that the job can be sent again if its worker dies. It touches no socket:
/// the broker gives it a Send, so it is tested without one. Loop thread only.
class Dispatcher {
 public:
  /// Sends one message to a worker; frames[0] is the worker's routing id. False if it could not be
  /// sent now (the worker vanished, or its queue is full).
  using Send = std::function<bool(core::Frames& frames)>;
  /// The longest `job` may run once dispatched (its tenant's max_job_ms).
  using MaxRun = std::function<std::chrono::milliseconds(const Job& job)>;
  /// Called after each send, for the broker's own bookkeeping (actor placement, metrics).
  using Sent = std::function<void(Job& job, WorkerRecord& worker)>;

  Dispatcher(JobTable& jobs, WorkerRegistry& workers, Scheduler& scheduler, Send send, MaxRun max_run, Sent sent);

  /// How long a worker may take to stop a job that is due (the broker's cancel_grace_ms): a job sent
  /// to wait behind others may start that much after they are due.
  void set_stop_allowance(std::chrono::milliseconds allowance) { stop_allowance_ = allowance; }
  /// The largest request header sent inside its Dispatch rather than as a frame of its own: one
  /// frame fewer per job. Half the header limit at most, so that the Dispatch stays under it.
  void set_embedded_request_bytes(std::size_t bytes) { embedded_request_bytes_ = bytes; }

  /// Sends `job` now if nothing is queued and a worker can take it; otherwise queues it (Queued).
  void route(Job& job);
  /// Offers every worker with a free credit the queued jobs it can run, until none fits.
  void dispatch_queued();

 private:
  /// Sends `job` to `worker`: Running, holding one of its credits; the job's step deadline becomes
  /// its max_run when that comes before its deadline. False (and nothing changed) if the send failed.
  bool dispatch(WorkerRecord& worker, Job& job);

  std::chrono::milliseconds stop_allowance_{0};
  std::size_t embedded_request_bytes_ = 0;
  JobTable& jobs_;
  WorkerRegistry& workers_;
  Scheduler& scheduler_;
  Send send_;
  MaxRun max_run_;
  Sent sent_;
  /// From a random start: a worker that reaches this broker with jobs of another broker (or of this
  /// one before a restart) still running cannot answer one of this broker's dispatches with them.
  std::uint64_t next_dispatch_id_;
};

}  // namespace bridge::broker
