#pragma once
/// @file BrokerService: routes jobs from clients to workers and results back.

#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include <zmq.hpp>

#include "bridge/broker/actor_store.hpp"
#include "bridge/broker/actor_table.hpp"
#include "bridge/broker/broker_metrics.hpp"
#include "bridge/broker/broker_options.hpp"
#include "bridge/metrics/metrics_server.hpp"
#include "bridge/broker/fleet_view.hpp"
#include "bridge/broker/quota_leases.hpp"
#include "bridge/broker/quota_store.hpp"
#include "bridge/broker/redis_connection.hpp"
#include "bridge/broker/scheduler.hpp"
#include "bridge/broker/tenants.hpp"
#include "bridge/broker/worker_registry.hpp"
#include "bridge/core/notifier.hpp"

namespace bridge::broker {

/// Thread model: run() is the broker's only thread. It owns both ROUTER sockets and the Redis
/// connection and waits on all three (plus the stop eventfd) in one zmq_poll, so no Redis round trip
/// ever blocks it: admission replies arrive as poll events like any message.
///
/// A job's life: verified -> admitting (Redis quota check in flight) -> queued (Scheduler) ->
/// in flight on a worker (WorkerRecord::inflight) -> answered. If its worker dies it goes back to the
/// front of its tenant's queue, up to max_attempts. Every path ends in exactly one reply to the client.
class BrokerService {
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
  // Clients.
  void receive_clients();
  void handle_client_message(core::Frames& frames);
  void handle_request(std::string client, core::Frames frames, const wire::JobRequest& request);
  void handle_status(const std::string& client, const wire::StatusRequest& request);
  void handle_quota(const std::string& client, const wire::QuotaRequest& request);
  void handle_actor_show(const std::string& client, const wire::ActorRequest& request);
  void handle_ping(const std::string& client, const wire::Ping& ping);
  void reply(const std::string& client, core::Frames frames);
  void reply_error(const std::string& client, std::uint64_t job_id, const Status& status, std::uint32_t retry_after_ms = 0);

  // Admission: the tenant's quota (leases), then route() or, for an actor call, start_actor_call().
  void admit(std::unique_ptr<Job> job);
  void admitted(std::unique_ptr<Job> job);
  /// Answers a job the tenant's quota has no room for, naming the limit.
  void refuse_for_quota(Job& job, const QuotaStore::Decision& decision);
  void on_admission(std::uint64_t key, const std::string& tenant, std::uint64_t bytes,
                    const QuotaStore::Decision& decision);

  // Workers.
  void receive_workers();
  void handle_worker_message(core::Frames& frames);
  void on_hello(const std::string& id, const wire::WorkerHello& hello);
  void on_result(WorkerRecord& worker, core::Frames& frames);
  void lose_worker(const std::string& id, const std::string& reason);
  /// A job whose worker was lost or restarted: back to the queue (an actor call: reactivated).
  void retry_elsewhere(std::unique_ptr<Job> job, const std::string& lost_worker);
  void send_to_worker(const std::string& id, core::Frames frames);
  void send_reregister(const std::string& id, const std::string& reason);

  // Scheduling.
  void route(std::unique_ptr<Job> job);
  void dispatch_queued();
  bool dispatch(WorkerRecord& worker, std::unique_ptr<Job>& job);

  // Actors (broker_actors.cpp). An actor's calls wait in its ActorEntry and take turns: the call
  // holding the turn is admitted, sent to the worker holding the activation (or activates the
  // actor from Redis on a worker), and its kept outputs are written through to Redis before the
  // result goes to the client and the next call starts.
  void actor_call_arrived(std::unique_ptr<Job> job, const std::string& actor_id);
  void pump_actors();
  void start_actor_call(std::unique_ptr<Job> job);
  void on_activation_sent(Job& job, const WorkerRecord& worker);
  void on_actor_result(WorkerRecord& worker, std::unique_ptr<Job> job, core::Frames& frames, std::size_t returned);
  void release_actor_turn(Job& job);
  /// Drops the activation on its worker (the worker's copy may be ahead of Redis, or idle).
  void deactivate(ActorEntry& actor);
  void deactivate_idle_actors(Clock::time_point now);

  // Endings: every job ends in exactly one of these.
  void finish(Job& job, core::Frames result);
  void fail(Job& job, const Status& status, std::uint32_t retry_after_ms = 0);
  void forget(Job& job);

  void on_timers(Clock::time_point now);
  /// Re-reads tenants_file if it changed (or always, when `forced`); a file that does not parse or
  /// validate is refused with its error logged, and the quotas in force stay.
  void check_tenants_file(bool forced);
  void apply_tenants(TenantTable table, const char* why);
  bool drained() const;
  /// How long this broker's liveness key lives in Redis without a refresh.
  std::chrono::milliseconds liveness_ttl() const;

  BrokerOptions options_;
  std::uint64_t incarnation_;  ///< random per process: clients see a restart in Pong and re-send
  TenantTable tenants_;
  zmq::context_t context_;
  zmq::socket_t frontend_;
  zmq::socket_t backend_;
  core::Notifier stop_;
  core::Notifier reload_;
  bool stopping_ = false;
  std::string tenants_signature_;            ///< mtime and size of tenants_file when last read
  Clock::time_point next_tenants_check_{};
  std::int64_t tenants_loaded_at_ms_ = 0;    ///< wall clock, for bridgectl quota show

  WorkerRegistry workers_;
  Scheduler scheduler_;
  std::unordered_map<std::uint64_t, std::unique_ptr<Job>> admitting_;  ///< waiting for Redis
  std::unordered_set<std::string> active_ids_;  ///< "<client>/<job id>" of every job held: duplicates are ignored
  std::uint64_t next_key_ = 1;
  std::uint64_t next_dispatch_id_ = 1;
  Clock::time_point next_heartbeat_{};
  Clock::time_point next_admission_sweep_{};

  RedisConnection redis_;  // drops pending reply handlers unrun when destroyed
  QuotaStore quotas_;
  QuotaLeases leases_{quotas_};
  ActorStore actor_store_;
  ActorTable actors_;
  std::unordered_map<std::uint64_t, std::unique_ptr<Job>> loading_;  ///< actor calls waiting for state from Redis
  std::unordered_map<std::uint64_t, std::unique_ptr<Job>> writing_;  ///< actor calls waiting for write-through
  FleetView fleet_view_;
  BrokerMetrics metrics_;
  std::unique_ptr<metrics::MetricsServer> metrics_server_;  // when metrics_listen is set
  bool redis_was_connected_ = false;
};

}  // namespace bridge::broker
