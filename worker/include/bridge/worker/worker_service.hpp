#pragma once
/// @file WorkerService: a worker's connection to the broker and its job loop.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <zmq.hpp>

#include "bridge/core/batch.hpp"
#include "bridge/core/curve.hpp"
#include "bridge/core/handshake_monitor.hpp"
#include "bridge/core/liveness.hpp"
#include "bridge/core/notifier.hpp"
#include "bridge/worker/actor_host.hpp"
#include "bridge/worker/backend.hpp"
#include "bridge/worker/batcher.hpp"
#include "bridge/worker/dispatch_decoder.hpp"
#include "bridge/worker/home_probe.hpp"
#include "bridge/worker/worker_metrics.hpp"
#include "bridge/worker/worker_options.hpp"

namespace bridge::worker {

/// Thread model: run() owns the DEALER socket on the calling thread and never waits on a kernel;
/// kernels run on the backend's threads and hand results back through a queue and an eventfd, and
/// every wake-up sends all results that are ready. stop() may be called from any thread (and from a
/// signal handler through stop_notifier()).
///
/// Protocol (docs/protocol.md): hello on connect, heartbeats every heartbeat_ms, a reconnect with a
/// fresh hello when the broker is silent for `liveness` heartbeats, Goodbye then drain on stop.
class WorkerService {
 public:
  WorkerService(WorkerOptions options, std::shared_ptr<Backend> backend, const KernelRegistry& kernels);
  ~WorkerService();

  /// Serves until stop(); then stops taking jobs, finishes those in flight (up to drain_timeout_ms),
  /// sends their results and a Goodbye, and returns.
  void run();
  void stop() noexcept;
  /// Async-signal-safe way to call stop(): notify() this from a signal handler.
  core::Notifier& stop_notifier() { return stop_; }

  const std::string& id() const { return id_; }

 private:
  using Clock = std::chrono::steady_clock;

  void connect();
  /// After the answers gathered so far (flush_answers()), so that the broker reads everything in
  /// the order it was made.
  void send(core::Frames& frames);
  /// A result or an error: one of one frame waits for the end of this wake-up, to go to the broker
  /// with the others that are ready by then in one Batch (docs/protocol.md, "Batches").
  void send_answer(core::Frames& frames);
  void flush_answers();
  void transmit(core::Frames& frames);
  void send_hello();
  void send_heartbeat();
  void send_goodbye(const std::string& reason);
  void receive();
  /// One message from the broker; false when it replaced the socket (nothing more to read from the old one).
  bool handle_message(core::Frames& frames);
  /// Logs a refused or failed handshake once (until it changes), and its end.
  void log_handshakes();
  void handle_dispatch(const wire::Dispatch& dispatch, core::Frames& frames);
  /// Asks a running job to stop (the broker's Cancel); an unknown dispatch is ignored.
  void stop_job(std::uint64_t dispatch_id, StatusCode code, const std::string& message);
  /// Stops jobs past their deadline; returns the next deadline of a job still running.
  Clock::time_point stop_overdue_jobs(Clock::time_point now);
  /// Runs a job (or batch) now if one of the `slots` is free, else puts it in waiting_.
  void launch(std::unique_ptr<Execution> execution);
  void launch_batches(std::vector<DynamicBatcher::Group> groups);
  /// Answers the waiting jobs that were stopped (cancel, deadline, a broker left) without running them.
  void answer_stopped_waiting();
  /// At a job's start (any thread): its tenant's max_job_ms runs from now (Cancellation::limit_run).
  static void arm_run_limit(Execution& execution);
  void answer_error(std::uint64_t dispatch_id, const Status& status);
  void on_complete(std::unique_ptr<Execution> execution);  // any thread
  void send_completed();
  void answer_finished(std::unique_ptr<Execution> execution);  // a finished job (or batch): its results
  void send_result(Execution& execution);
  zmq::message_t result_header(const Execution& execution, std::span<const Tensor> returned, std::vector<bool> inlined,
                               std::span<const Tensor> kept);

  WorkerOptions options_;
  core::CurveClientKeys curve_;  ///< read once: a reconnect must not depend on the files still being there
  std::shared_ptr<Backend> backend_;
  const KernelRegistry& kernels_;
  std::string id_;
  std::uint64_t incarnation_ = 0;
  /// Connections made so far (connect()); each has its own routing id, and its hello says its number.
  std::uint32_t connection_ = 0;

  zmq::context_t context_;
  std::unique_ptr<zmq::socket_t> socket_;
  std::unique_ptr<core::HandshakeMonitor> handshakes_;  ///< of socket_, made with it
  std::string handshake_failure_;                       ///< last one logged (once until it changes)
  core::Notifier stop_;
  core::Notifier completed_signal_;
  Backend::Completion completion_;

  std::mutex completed_mutex_;
  std::vector<std::unique_ptr<Execution>> completed_;  // guarded by completed_mutex_

  WorkerMetrics metrics_;
  DynamicBatcher batcher_;
  ActorHost actors_;
  DispatchDecoder decoder_;     ///< uses actors_
  std::uint32_t inflight_ = 0;  // accepted (batching, waiting or in the backend), result not yet sent
  /// The slots: launches (jobs or batches) in the backend, at most options_.slots, and the prefetched
  /// jobs (the broker sends up to slots + prefetch) waiting for one. A job that ends hands its slot
  /// to the oldest waiting one on the backend's own thread, so that it starts without waiting for
  /// this loop to wake up, and without a round trip to the broker.
  std::mutex slots_mutex_;
  std::uint32_t started_ = 0;  // guarded by slots_mutex_
  /// Guarded by slots_mutex_; not empty only while every slot is taken.
  std::deque<std::unique_ptr<Execution>> waiting_;
  std::uint32_t handing_over_ = 0;      // guarded by slots_mutex_: waiting jobs taken, not yet in the backend
  std::condition_variable handed_over_;  // handing_over_ fell to 0
  bool stops_to_answer_ = false;  ///< a job was asked to stop since answer_stopped_waiting() last looked
  /// Stops every job here and drops their results: the broker no longer holds them (it was left, or
  /// it forgot this worker and re-dispatched them).
  void orphan_jobs(const std::string& why);
  /// At exit: the waiting jobs never start, and the running ones are asked to stop (the broker runs
  /// them again elsewhere), so the backend goes idle.
  void stop_everything();
  /// Jobs launched together as one batch (one combined execution with its own Cancellation): the
  /// batch is stopped once every one of them has been.
  struct BatchStop {
    std::shared_ptr<Cancellation> combined;
    std::vector<std::shared_ptr<Cancellation>> members;
  };
  struct Running {
    Clock::time_point deadline;
    std::shared_ptr<Cancellation> cancel;
    std::uint64_t result_bytes = 0;  ///< what its result will carry (the last step's planned outputs)
    std::shared_ptr<BatchStop> batch;  ///< set while it is a member of a batch
  };
  /// Asks job `job` to stop, and its batch with it once none of the batch's jobs is wanted.
  void stop(Running& job, StatusCode code, const std::string& message);
  /// Links the members of `combined` (a batch) to it, for stop().
  void link_batch(const Execution& combined);
  /// The bytes of the results of the jobs running here, when that is large enough to announce
  /// (core/liveness.hpp), else 0. Every heartbeat carries it: ZeroMQ fills one write batch with the
  /// announcement sent just before a large result and the result itself, and under CURVE encrypts
  /// the whole result before that batch leaves, so that announcement alone can come too late.
  std::uint64_t results_coming() const;
  std::vector<std::uint64_t> running_dispatches() const;  ///< for the hello: what this worker holds
  std::unordered_map<std::uint64_t, Running> running_;  // accepted jobs by dispatch id, until answered
  /// The brokers of options_.broker (a comma-separated list): the worker serves one at a time, the
  /// first at start, and moves to the next when its broker is silent or says goodbye.
  std::vector<std::string> brokers_;
  std::size_t broker_index_ = 0;
  const std::string& broker() const { return brokers_[broker_index_]; }
  bool endpoints_checked_ = false;
  /// Moves to broker `index` of the list (`why` the current one is left, for the log): the jobs
  /// running here are stopped and their results dropped, and the hello waits until they stopped.
  void move_to_broker(std::size_t index, const std::string& why);
  /// Away from the first broker: asks it (HomeProbe), and goes back once it answers and the jobs here are done.
  void come_home(Clock::time_point now);
  HomeProbe home_probe_{context_, id_, curve_};
  bool going_home_ = false;  ///< the first broker answered: back once inflight_ is 0, or at home_by_
  Clock::time_point home_by_{};
  std::unordered_set<std::uint64_t> orphaned_;  ///< dispatches of a broker left behind, still stopping
  bool hello_after_orphans_ = false;            ///< the next broker is greeted once orphaned_ is empty...
  Clock::time_point hello_by_{};                ///< ...or at this time at the latest
  bool broker_disconnected_ = false;            ///< the monitor saw the connection close (acted on in run())
  bool connection_up_ = false;                  ///< the handshake succeeded on socket_'s connection
  bool connection_lost_ = false;                ///< ...and then it closed (acted on in run())
  const std::vector<std::string> no_others_;
  Clock::time_point last_heard_;
  Clock::time_point last_hello_;  ///< the broker's silence is counted from this too
  /// How many liveness windows the broker is waited for before the next try (a hello on the same
  /// connection first, then new connections): doubles with each one that heard nothing back (up to
  /// kMaxSilenceBackoff), 1 again once the broker is heard. Also how many windows ZeroMQ's heartbeats
  /// wait before they close a connection whose peer is gone.
  std::uint32_t silence_backoff_ = 1;
  static constexpr std::uint32_t kMaxSilenceBackoff = 8;
  /// How much longer than its liveness the broker is waited for: the transfer time of the large
  /// message its last one announced (core/liveness.hpp).
  std::chrono::milliseconds broker_grace_{0};
  /// This worker's own large sends (results): time they keep the link busy is not the broker's silence.
  core::BusyWindows own_sends_;
  core::BatchWriter gathered_answers_;  ///< send_answer()'s, until flush_answers()
  /// This connection's broker set Envelope.batches on a message (a Dispatch): it reads Batches. A
  /// broker that does not would refuse them, and the results in them would be lost.
  bool broker_reads_batches_ = false;
  Clock::time_point next_heartbeat_;
};

}  // namespace bridge::worker
