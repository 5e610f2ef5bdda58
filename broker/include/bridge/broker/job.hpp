#pragma once
/// @file Job: a client's request while the broker holds it, and the states it passes through.

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "bridge/core/wire.hpp"
#include "bridge/job.hpp"

namespace bridge::broker {

using Clock = std::chrono::steady_clock;

/// Where a job is. JobTable owns every job whatever its state; the state says which other part
/// refers to it and what it holds (docs/architecture.md, "A job's states"):
///
///   WaitingTurn -> Admitting -> [LoadingActor] -> Queued -> Running -> [WritingThrough] -> (ended)
///                                                              |
///                                                              +-> Cancelling -> (ended)
///
/// A job is answered exactly once. It ends, releasing everything it holds, as soon as nothing
/// outside the broker holds it: at once for a refusal or a job still waiting, and only when the
/// worker frees the slot (result or loss) for a job answered while on a worker (Cancelling).
enum class JobState : std::uint8_t {
  kWaitingTurn,     ///< an actor call behind the actor's earlier calls (ActorTable)
  kAdmitting,       ///< the tenant's quota is being asked of Redis (holds nothing yet)
  kLoadingActor,    ///< the actor's state is being read from Redis for an activation
  kQueued,          ///< waiting for a worker slot (Scheduler)
  kRunning,         ///< dispatched: holds a credit of `worker`
  kWritingThrough,  ///< an actor call ran; its kept outputs are being written to Redis
  kCancelling,      ///< answered (deadline, cancel, shutdown) while a worker or a write still holds it
};
const char* job_state_name(JobState state);
/// "a, b, c", for messages that list kernels or names.
std::string comma_joined(const std::vector<std::string>& items);

/// Lives from the moment a request passes verification until it ends (see JobState). Its frames
/// are the client's request header and payload, forwarded to a worker without being copied.
struct Job {
  std::uint64_t key = 0;   ///< broker-unique
  std::string client;      ///< ROUTER routing id of the client
  std::string client_key;  ///< the key the request came with: answers go only to it (ClientBindings)
  std::uint64_t client_job_id = 0;
  std::string tenant;
  std::string kernel;                ///< the first kernel (for logs and messages)
  std::vector<std::string> kernels;  ///< every kernel a worker needs: kernel, then pipeline stages
  Placement placement = Placement::kAny;
  int priority = 0;
  Clock::time_point received{};
  Clock::time_point deadline{};  ///< the client's: answered DEADLINE_EXCEEDED then, wherever it is
  /// The current step's own time limit, if sooner than the deadline: admission (admission_timeout_ms)
  /// or running (the tenant's max_job_ms); when Cancelling, how long the worker may take to stop it.
  /// max() while the step has none.
  Clock::time_point step_deadline = Clock::time_point::max();
  core::Frames frames;  ///< [request header][payload...]
  std::uint64_t payload_bytes = 0;
  std::uint32_t inline_outputs = 0;  ///< the request's: no inline output of a result may be larger
  bool batches = false;              ///< the request's Envelope.batches: its answer may go in a Batch
  int attempts = 0;  ///< dispatches so far
  /// Dispatches whose worker was lost (or restarted) while it held the job: max_attempts bounds
  /// these. One sent again because it went to a worker's closed connection does not count.
  int losses = 0;

  JobState state = JobState::kAdmitting;  ///< changed through JobTable::set_state only
  bool holds_quota = false;               ///< a unit of the tenant's lease (QuotaLeases) is in use
  std::string worker;                     ///< the worker whose credit it holds; empty: none
  bool write_pending = false;             ///< an actor write-through is in flight for it
  std::uint64_t dispatch_id = 0;          ///< current dispatch (0 while not on a worker)
  Clock::time_point dispatched{};

  // Actor calls.
  std::string actor;                ///< "<tenant>/<actor id>"; empty for a plain job
  bool holds_actor_turn = false;    ///< the actor runs no other call until this one ends
  std::string pinned_worker;        ///< must run here (the actor's activation), unless it left
  bool activate = false;            ///< the dispatch carries the actor's state from Redis
  std::vector<Tensor> activation;   ///< that state, until dispatched
  std::uint64_t actor_version = 0;  ///< the state version the call starts from
  /// The highest version of the actor the client was told of: Redis holding less lost state.
  std::uint64_t actor_version_seen = 0;
  int reactivations = 0;           ///< times a worker answered ACTOR_NOT_ACTIVE
  bool holds_actor_claim = false;  ///< holds the actor's turn fleet-wide, in Redis (ActorStateStore::claim)
  int claim_tries = 0;             ///< claims refused while another broker's call held the actor

  /// Answered: the client has its one answer; the job only waits to release what it holds.
  bool answered() const { return state == JobState::kCancelling; }
  /// When the job is overdue: its deadline, or earlier, its current step's limit; once answered, only
  /// the limit on how long its worker may take to let go (cancel_grace_ms).
  Clock::time_point due() const { return answered() ? step_deadline : std::min(deadline, step_deadline); }
  /// Something outside the broker's loop still holds the job (a worker's credit, a Redis write), so
  /// answering it cannot end it yet.
  bool held_outside() const { return !worker.empty() || write_pending; }
};

}  // namespace bridge::broker
