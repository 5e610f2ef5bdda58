#pragma once
/// @file BrokerService: routes jobs from clients to workers and results back.

#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include <zmq.hpp>

#include "bridge/broker/actor_calls.hpp"
#include "bridge/broker/actor_store.hpp"
#include "bridge/broker/admission.hpp"
#include "bridge/broker/broker_metrics.hpp"
#include "bridge/broker/broker_options.hpp"
#include "bridge/broker/client_bindings.hpp"
#include "bridge/broker/client_ledger.hpp"
#include "bridge/broker/connection_monitor.hpp"
#include "bridge/broker/dispatcher.hpp"
#include "bridge/broker/fleet_view.hpp"
#include "bridge/broker/job_table.hpp"
#include "bridge/broker/quota_leases.hpp"
#include "bridge/broker/quota_store.hpp"
#include "bridge/broker/redis_connection.hpp"
#include "bridge/broker/scheduler.hpp"
#include "bridge/broker/store_epoch.hpp"
#include "bridge/broker/tenants.hpp"
#include "bridge/broker/throttled_log.hpp"
#include "bridge/broker/worker_keys.hpp"
#include "bridge/broker/worker_registry.hpp"
#include "bridge/broker/zap_handler.hpp"
#include "bridge/core/batch.hpp"
#include "bridge/core/curve.hpp"
#include "bridge/core/notifier.hpp"
#include "bridge/metrics/metrics_server.hpp"

namespace bridge::core::protocol {
struct WorkerHello;
}  // namespace bridge::core::protocol

namespace bridge::broker {

/// Thread model: run() is the broker's only thread. It owns both ROUTER sockets and the Redis
/// connection and waits on all three (plus the stop eventfd) in one zmq_poll, so no Redis round trip
/// ever blocks it: admission replies arrive as poll events like any message.
///
/// Jobs: JobTable owns every job; its JobState says which part refers to it (job.hpp). Every job
/// is answered exactly once (finish() or fail()) and ends exactly once (release()), which gives back
/// everything it holds: its place in a queue, the tenant's lease, the actor's turn. A job answered
/// while a worker runs it (deadline, cancel) is Cancelling: the worker is told to stop, and the job
/// keeps the worker's credit and the tenant's lease until the worker frees the slot, so a tenant
/// never occupies more slots than it was granted.
///
/// The parts that decide are components without sockets, each unit-tested on its own: check_request
/// (request_checks.hpp), Admission (quotas, through QuotaLeases), ActorCalls (actor turns,
/// activation, write-through), Dispatcher (scheduling onto worker credits), JobTable, ClientLedger.
/// BrokerService owns the sockets and Redis, and is the Host through which the components answer
/// and end jobs. Its methods live in several files, one concern each: broker_service.cpp (the loop
/// and client socket), broker_workers.cpp (the worker socket), broker_requests.cpp (requests and
/// tenants), broker_dispatch.cpp (workers' hellos, scheduling and results), broker_endings.cpp
/// (answers, deadlines, cancels, release), broker_queries.cpp (status, quotas, actors, ping).
class BrokerService final : private Admission::Host, private ActorCalls::Host {
 public:
  /// Binds nothing yet; throws core::ConfigError on invalid options.
  BrokerService(BrokerOptions options, TenantTable tenants);
  ~BrokerService();

  /// Binds the endpoints and serves until stop(); then stops accepting, drains (drain_timeout_ms),
  /// answers whatever is left with UNAVAILABLE, and returns. Throws zmq::error_t if a bind fails.
  void run();
  void stop() noexcept { stop_.notify(); }
  /// Async-signal-safe stop: notify() this from a signal handler.
  core::Notifier& stop_notifier() { return stop_; }
  /// Async-signal-safe reload of tenants_file (SIGHUP): notify() this from a signal handler.
  core::Notifier& reload_notifier() { return reload_; }

  const std::string& id() const { return options_.id; }

 private:
  /// Who sent a client message: the key it authenticated with (the ZAP user id; empty with
  /// security: none), the tenant that key is listed under, and whether it is an operator key.
  struct Caller {
    std::string key;
    std::string tenant;
    bool is_operator = false;
  };

  // The loop and its sockets (broker_service.cpp).
  void on_redis_transition();
  /// Redis lost the fleet's data (StoreEpoch): leases rewritten, quotas republished, actors marked lost.
  void on_store_lost(const std::string& why);

  // Clients' messages in (broker_clients.cpp).
  void receive_clients();
  /// Reads the frontend monitor; closed connections unbind their routing ids (ClientBindings).
  void drain_frontend_monitor();
  /// `frame`: the peer's first frame of a message (it carries the connection's ZAP user id).
  Caller identify(const zmq::message_t& frame) const;
  /// A client's message as read, before it is handled (after the frontend's monitor is drained).
  struct ClientMessage {
    core::Frames frames;
    Caller caller;
    int fd = -1;
    Status decoded;  ///< decode_envelope()'s verdict on frames[1]
  };
  /// Reads the connection's key and descriptor and decodes the header; returns the messages it
  /// holds (a Batch's count), which the read budget of a wake-up counts.
  int read_client_message(ClientMessage& message, core::Frames& frames);
  void handle_client_message(ClientMessage& received);
  /// One message from `client` (alone, or one of a Batch), its header frames[1] decoded as `message`;
  /// `caller` and `fd` are the connection's.
  void on_client_message(std::string client, const Caller& caller, int fd, const wire::Envelope& message,
                         core::Frames& frames);
  /// Logs a message refused before it was read, and answers it (with its job's id, if it says one).
  void refuse_client_message(const std::string& client, const zmq::message_t& header, const Status& status);
  /// Messages taken from one socket per wake-up before the other gets its turn.
  static constexpr int kMaxReceivesPerWakeup = 512;
  void receive_workers();
  /// Returns the messages it held (a Batch's count), which the read budget of a wake-up counts.
  int handle_worker_message(core::Frames& frames);
  /// One message from connection `route` under `key` (alone, or one of a Batch): `message` is
  /// frames[1]'s, after the routing id.
  void on_worker_message(std::string_view route, const std::string& key, const wire::Envelope& message,
                         core::Frames& frames);
  /// The CURVE key (ZAP user id) of the connection `frame` came on; "" without one.
  static std::string peer_key(const zmq::message_t& frame);
  /// security: curve: `key`, of a message that came on connection `route`, is enrolled and, for a
  /// worker id (empty: none known), the one that id is bound to; false: ignore the message.
  bool worker_key_checks(const std::string& id, std::string_view route, const std::string& key);

  // Answers to clients (broker_replies.cpp).
  /// `batchable`: the message answers one that set Envelope.batches, so it may wait for the end of
  /// this wake-up and go with the client's other answers in one Batch (flush_replies()).
  void reply(const std::string& client, core::Frames frames, bool batchable = false);
  void reply_error(const std::string& client, std::uint64_t job_id, const Status& status,
                   std::uint32_t retry_after_ms = 0, bool batchable = false);
  /// Sends the answers gathered for each client; at the end of every wake-up, and before the loop waits.
  void flush_replies();
  void flush_replies(const std::string& client, core::BatchWriter& gathered);
  void send_reply(const std::string& client, core::Frames frames);
  /// To the connection of worker `id`'s latest hello (nothing if it is not registered).
  void send_to_worker(const std::string& id, core::Frames frames);
  /// To the connection with routing id `route`.
  void send_to_route(const std::string& route, core::Frames frames);
  /// Before a message of `bytes` to the connection `route`: a Heartbeat announcing it, when it is
  /// large enough to hold up the broker's heartbeats past the worker's liveness (core/liveness.hpp).
  void announce_to_route(const std::string& route, std::uint64_t bytes);
  void on_timers(Clock::time_point now);
  /// Drops clients that left more than max_unread_result_bytes unread for client_stall_ms: their
  /// jobs are cancelled, and they are sent nothing until what they hold has drained.
  void drop_stalled_clients(Clock::time_point now);
  /// Answers every job still held (shutdown) and lets go of the workers.
  void shut_down();
  bool drained() const;
  /// How long this broker's liveness key lives in Redis without a refresh.
  std::chrono::milliseconds liveness_ttl() const;

  // Requests and tenants (broker_requests.cpp).
  void handle_request(std::string client, const Caller& caller, core::Frames frames, const wire::JobRequest& request);
  /// The tenant a request from `caller` acts for: `named` if the caller may act for it, the
  /// caller's own if `named` is empty; PERMISSION_DENIED otherwise. `for_job`: operator keys may
  /// name any tenant in queries, but run no jobs.
  Status resolve_tenant(const Caller& caller, std::string_view named, bool for_job, std::string& tenant) const;
  /// A message a client sent that was refused or dropped: a warning, at most one per 10 s (any
  /// client can cause these at will), the rest at debug.
  void log_refusal(const std::string& line);
  /// Admission::Host and ActorCalls::Host: an admitted plain job is routed, an actor call started;
  /// quota refusals are counted.
  void admit(Job& job) override { admission_.admit(job); }
  void admitted(Job& job) override;
  void quota_refused(const std::string& tenant, const std::string& limit) override;
  /// Re-reads tenants_file if it changed (or always, when `forced`); a file that does not parse or
  /// validate is refused with its error logged, and the quotas in force stay.
  void check_tenants_file(bool forced);
  /// The same for workers_file; a worker whose key is no longer listed is let go at its next message.
  void check_workers_file(bool forced);
  /// The ZAP handler's decision for one connection's handshake (security.md).
  ZapAnswer decide_zap(const ZapRequest& request);
  void apply_tenants(TenantTable table, const char* why);

  // Workers, scheduling and results (broker_dispatch.cpp).
  /// `route`: the routing id of the connection it came on; `key`: that connection's (peer_key()).
  void on_hello(std::string_view route, const std::string& key, const wire::Envelope& envelope);
  /// Whether a hello may register: one worker per connection, and the jobs it says it holds are the
  /// broker's on that worker (else it is answered Reregister and any record let go).
  bool hello_fits(std::string_view route, const core::protocol::WorkerHello& hello);
  void on_result(WorkerRecord& worker, core::Frames& frames);
  void lose_worker(const std::string& worker, const std::string& reason);
  /// A job whose worker is gone (lost, or restarted as a new process), or that went to a closed
  /// connection of a live one (`lost` false): it runs again elsewhere (an actor call: reactivated),
  /// fails WORKER_LOST after max_attempts losses, or, if it was answered already, ends.
  void worker_let_go(Job& job, const std::string& worker, const std::string& reason, bool lost = true);
  void remove_worker(const std::string& id);
  void send_reregister(const std::string& route, const std::string& reason);
  void route(Job& job) override { dispatcher_.route(job); }
  void dispatch_queued() { dispatcher_.dispatch_queued(); }
  /// Dispatcher's Send: one message on the backend socket.
  bool send_dispatch(core::Frames& frames);
  /// Dispatcher's Sent: actor placement and metrics of a job just sent.
  void on_dispatched(Job& job, WorkerRecord& worker);

  // Answers and endings (broker_endings.cpp).
  /// Forwards the worker's result (frames without the routing id) to the client and ends the job.
  void finish(Job& job, core::Frames result) override;
  /// Answers the job with an error. A job a worker or a write still holds becomes Cancelling (a
  /// running job's worker is told to stop) and ends when they let go; any other ends now.
  void fail(Job& job, const Status& status, std::uint32_t retry_after_ms = 0) override;
  /// Gives back everything the job holds (queue place, tenant lease, actor turn) and destroys it.
  void release(Job& job) override;
  /// Answers every overdue job: deadline, admission timeout or max_job_ms, by the job's state.
  void answer_overdue(Clock::time_point now);
  /// DEADLINE_EXCEEDED for a job stopped on `worker` at its deadline.
  Status ran_past_deadline(const Job& job, const std::string& worker) const;
  /// DEADLINE_EXCEEDED for a job stopped on `worker` by its tenant's max_job_ms, naming the limit.
  Status over_max_job_ms(const Job& job, const std::string& worker) const;
  void handle_cancel(const std::string& client, const wire::CancelRequest& request);
  void send_cancel(const Job& job, StatusCode reason);

  /// ActorCalls::Host: a Deactivate message to the worker.
  void send_deactivate(const std::string& worker, const std::string& actor_key) override;

  // Queries (broker_queries.cpp).
  void handle_status(const std::string& client, const wire::StatusRequest& request);
  void handle_quota(const std::string& client, const Caller& caller, const wire::QuotaRequest& request);
  void handle_ping(const std::string& client, const wire::Ping& ping);
  /// `bridgectl actor show`: the actor's state as Redis holds it, without tensor bytes.
  void handle_actor_show(const std::string& client, const Caller& caller, const wire::ActorRequest& request);

  BrokerOptions options_;
  std::uint64_t incarnation_;  ///< random per process: clients see a restart in Pong and re-send
  TenantTable tenants_;
  zmq::context_t context_;
  core::CurveKeys keys_;    ///< the broker's own pair (security: curve)
  WorkerKeys worker_keys_;  ///< enrolled workers (workers_file)
  std::string workers_signature_;
  /// Bound before the sockets bind (ZAP must exist first, or libzmq lets connections through unchecked).
  ZapHandler zap_;
  zmq::socket_t frontend_;
  zmq::socket_t backend_;
  std::unique_ptr<ConnectionMonitor> frontend_monitor_;  // made in run(), before the bind
  core::Notifier stop_;
  core::Notifier reload_;
  bool stopping_ = false;
  std::string tenants_signature_;  ///< mtime and size of tenants_file when last read
  Clock::time_point next_tenants_check_{};
  std::int64_t tenants_loaded_at_ms_ = 0;  ///< wall clock, for bridgectl quota show

  JobTable jobs_;
  ClientLedger ledger_;
  /// Answers gathered during this wake-up for clients that read batches (reply()); empty between wake-ups.
  std::unordered_map<std::string, core::BatchWriter> gathered_replies_;
  ClientBindings bindings_;
  /// The key each worker id first said hello with: no other key may register under it.
  std::unordered_map<std::string, std::string> worker_id_keys_;
  WorkerRegistry workers_;
  Scheduler scheduler_;
  Dispatcher dispatcher_;
  std::uint64_t next_key_ = 1;
  Clock::time_point next_heartbeat_{};
  Clock::time_point next_sweep_{};

  RedisConnection redis_;  // drops pending reply handlers unrun when destroyed
  QuotaStore quotas_;
  QuotaLeases leases_{quotas_};
  Admission admission_;
  ActorStore actor_store_;
  ActorCalls actor_calls_;
  FleetView fleet_view_;
  StoreEpoch epoch_;
  BrokerMetrics metrics_;
  std::unique_ptr<metrics::MetricsServer> metrics_server_;  // when metrics_listen is set
  bool redis_was_connected_ = false;
  std::uint64_t redis_generation_ = 0;  ///< of the connection on_redis_transition last saw
  ThrottledLog refusal_log_;
  static constexpr int kMaxQuotaQueriesInFlight = 8;
  int quota_queries_in_flight_ = 0;  ///< QuotaRequests waiting for Redis (handle_quota)
  static constexpr int kMaxActorQueriesInFlight = 8;
  int actor_queries_in_flight_ = 0;  ///< ActorRequests waiting for Redis (handle_actor_show)
  std::string redis_refusal_seen_;   ///< redis_.refusal() as last published
  std::mutex readiness_mutex_;
  std::string redis_refusal_;  ///< the same, for /readyz; guarded by readiness_mutex_
};

}  // namespace bridge::broker
