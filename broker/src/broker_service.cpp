// BrokerService: the loop, its sockets and its timers (see broker_service.hpp for the other files).
#include "bridge/broker/broker_service.hpp"

#include <algorithm>
#include <array>
#include <optional>

#include <spdlog/spdlog.h>
#include <zmq_addon.hpp>

#include "bridge/core/endpoint.hpp"
#include "bridge/core/job_codec.hpp"
#include "bridge/core/liveness.hpp"
#include "bridge/core/protocol.hpp"

namespace bridge::broker {
namespace {

constexpr int kSocketHighWaterMark = 100000;
// Messages read ahead from one client's connection while the loop is busy: past it, libzmq stops
// reading that connection and TCP holds the client back. One frame may be a Batch of 64 messages
// (or a 64 KiB header), so this bounds what a client that sends faster than the broker handles its
// messages makes the broker hold: about 1000 x 64 KiB. Plenty for any client: the loop reads 512
// messages per wake-up.
constexpr int kClientReadAhead = 1000;
// The loop wakes at least this often for its timers; deadlines are answered within it.
constexpr auto kTick = std::chrono::milliseconds(10);

BrokerOptions with_id(BrokerOptions options) {
  if (options.id.empty()) options.id = core::default_process_id();
  options.validate();
  return options;
}

// This process's name in Redis lease fields: the id and the incarnation, so that a broker restarted
// under a fixed id never counts a dead process's leases as its own (they expire with its liveness key).
std::string lease_owner(const std::string& id, std::uint64_t incarnation) {
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(incarnation));
  return id + "#" + hex;
}

core::CurveKeys broker_keys(const BrokerOptions& options) {
  return options.secure ? core::read_key_file(options.secret_key_file, /*need_secret=*/true) : core::CurveKeys{};
}

WorkerKeys enrolled_workers(const BrokerOptions& options) {
  return options.secure ? WorkerKeys::load_file(options.workers_file) : WorkerKeys{};
}

}  // namespace

BrokerService::BrokerService(BrokerOptions options, TenantTable tenants)
    : options_(with_id(std::move(options))),
      incarnation_(core::random_u64()),
      tenants_(std::move(tenants)),
      context_(1),
      keys_(broker_keys(options_)),
      worker_keys_(enrolled_workers(options_)),
      zap_(context_, [this](const ZapRequest& request) { return decide_zap(request); }),
      frontend_(context_, zmq::socket_type::router),
      backend_(context_, zmq::socket_type::router),
      ledger_({options_.max_unread_result_bytes, std::chrono::milliseconds(options_.client_stall_ms),
               options_.max_unread_tenant_bytes}),
      dispatcher_(
          jobs_, workers_, scheduler_, [this](core::Frames& frames) { return send_dispatch(frames); },
          [this](const Job& job) {
            const TenantQuota* quota = tenants_.find(job.tenant);
            return std::chrono::milliseconds(quota != nullptr ? quota->max_job_ms : TenantQuota::kDefaultMaxJobMs);
          },
          [this](Job& job, WorkerRecord& worker) { on_dispatched(job, worker); }),
      redis_(redis_address(options_), std::chrono::milliseconds(options_.redis_reply_timeout_ms)),
      quotas_(redis_, options_.redis_prefix, lease_owner(options_.id, incarnation_)),
      admission_({.enforce_quotas = options_.enforce_quotas,
                  .admission_timeout_ms = options_.admission_timeout_ms,
                  .retry_after_ms = options_.retry_after_ms,
                  .tenants_file = options_.tenants_file,
                  .store_name = redis_.address().to_string(),
                  .lease_ttl = liveness_ttl()},
                 tenants_, jobs_, leases_, *this),
      actor_store_(redis_, options_.redis_prefix,
                   {.replicas = options_.redis_wait_replicas,
                    .timeout = std::chrono::milliseconds(options_.redis_wait_timeout_ms)}),
      actor_calls_({.enforce_quotas = options_.enforce_quotas,
                    .retry_after_ms = options_.retry_after_ms,
                    .actor_idle_ms = options_.actor_idle_ms,
                    .store_name = redis_.address().to_string(),
                    .owner = options_.id + ":" + core::random_hex(64),
                    .claim_ttl = std::chrono::milliseconds(options_.heartbeat_ms) * options_.liveness},
                   jobs_, workers_, actor_store_, *this),
      fleet_view_(redis_, options_.redis_prefix, options_.id),
      epoch_(redis_, options_.redis_prefix, [this](const std::string& why) { on_store_lost(why); }) {}

BrokerService::~BrokerService() = default;

void BrokerService::run() {
  dispatcher_.set_stop_allowance(std::chrono::milliseconds(options_.cancel_grace_ms));
  dispatcher_.set_embedded_request_bytes(
      std::min<std::uint64_t>(core::kEmbeddedRequestBytes, options_.limits.max_header_bytes / 2));
  // A frame over the limits but within twice them is read, so that it can be answered TOO_LARGE
  // with its job id and logged; a bigger one makes libzmq close that peer's connection unread.
  const auto max_frame =
      static_cast<std::int64_t>(std::max(options_.limits.max_tensor_bytes, options_.limits.max_header_bytes));
  for (zmq::socket_t* s : {&frontend_, &backend_}) {
    s->set(zmq::sockopt::router_mandatory, 1);  // a send to a vanished peer fails instead of vanishing
    s->set(zmq::sockopt::linger, 1000);
    s->set(zmq::sockopt::sndhwm, kSocketHighWaterMark);
    s->set(zmq::sockopt::rcvhwm, kSocketHighWaterMark);
    s->set(zmq::sockopt::maxmsgsize, 2 * max_frame);
  }
  frontend_.set(zmq::sockopt::rcvhwm, kClientReadAhead);
  // A reconnecting worker takes over its id (its old connection may linger); another key doing so
  // is caught at its first message (handle_worker_message) and the id let go.
  backend_.set(zmq::sockopt::router_handover, 1);
  if (options_.secure) {
    core::apply_curve_server(frontend_, keys_, ZapHandler::kClientsDomain);
    core::apply_curve_server(backend_, keys_, ZapHandler::kWorkersDomain);
  } else {
    spdlog::warn(
        "security: none: connections are neither encrypted nor authenticated, and a request's tenant "
        "field is believed; any client can act as any tenant. Only for a fleet with one trusted user "
        "(docs/security.md)");
  }
  spdlog::info("{}", raise_open_files_limit());  // one descriptor per client connection
  frontend_monitor_ = std::make_unique<ConnectionMonitor>(context_, frontend_, "frontend (clients)");
  for (auto [socket, endpoint, role] : {std::tuple{&frontend_, &options_.frontend, "frontend (clients)"},
                                        std::tuple{&backend_, &options_.backend, "backend (workers)"}}) {
    try {
      socket->bind(*endpoint);
    } catch (const zmq::error_t& e) {
      throw std::runtime_error(std::string("cannot bind the ") + role + " endpoint " + *endpoint + ": " + e.what());
    }
  }
  leases_.set_fail_open(options_.fail_open);
  workers_.own_sends().configure(options_.link_floor_mib_s, options_.limits);
  if (!options_.metrics_listen.empty()) {
    // Readiness is read on the HTTP thread, so it looks only at the gauges the loop publishes.
    metrics_server_ = std::make_unique<metrics::MetricsServer>(
        options_.metrics_listen, metrics_.registry(),
        [this]() -> std::string {
          const auto& r = metrics_.registry();
          if (r.value("bridge_redis_refusing", {}) > 0 && !options_.fail_open) {
            std::lock_guard lock(readiness_mutex_);
            return "Redis refuses the broker's commands: " + redis_refusal_;
          }
          if (r.value("bridge_redis_connected", {}) < 1 && !options_.fail_open) return "Redis is not connected";
          if (r.value("bridge_workers", {}) < 1) return "no worker has registered";
          return {};
        },
        metrics::MetricsServer::read_token_file(options_.metrics_token_file));
    if (options_.metrics_token_file.empty() && !metrics::MetricsServer::is_loopback(options_.metrics_listen))
      spdlog::warn(
          "metrics_listen {} is reachable beyond this machine and has no metrics_token_file: anyone who can "
          "reach it reads the fleet's metrics (tenant names, job counts)",
          options_.metrics_listen);
    spdlog::info("metrics on http://{}:{}/metrics",
                 options_.metrics_listen.substr(0, options_.metrics_listen.rfind(':')), metrics_server_->port());
  }
  apply_tenants(TenantTable(tenants_), "start");
  check_tenants_file(false);  // records the file's signature
  if (options_.secure) check_workers_file(false);
  spdlog::info("broker {} listening: clients on {}, workers on {}, quotas in {} ({} tenants){}", options_.id,
               options_.frontend, options_.backend, redis_.address().to_string(), tenants_.tenants().size(),
               options_.secure ? fmt::format("; CURVE with {} client keys, {} enrolled workers (key {})",
                                             tenants_.key_count(), worker_keys_.size(), keys_.public_key)
                               : std::string("; security: none"));

  Clock::time_point drain_deadline{};
  // The order of work on each wake-up: Redis replies; handshakes, then disconnects (a connection
  // that ZAP lets on after a disconnect is reported only after that disconnect, ClientBindings);
  // Redis transitions before any message (leases follow the connection); then messages, timers.
  core::PollSet events;
  events.on_events([this] { return redis_.fd(); }, [this] { return redis_.events(); },
                   [this](short revents) { redis_.on_events(revents); });
  events.on_readable_seldom([this] { return zap_.handle(); }, [this] { zap_.serve(); });
  events.on_readable_seldom([this] { return frontend_monitor_->handle(); }, [this] { drain_frontend_monitor(); });
  events.every_wakeup([this] {
    // By generation too: a connection lost and another made within one wake-up is still a new one.
    if (redis_.connected() != redis_was_connected_ ||
        (redis_was_connected_ && redis_.generation() != redis_generation_))
      on_redis_transition();
  });
  events.on_notified(reload_, [this] {
    check_tenants_file(true);
    if (options_.secure) check_workers_file(true);
  });
  events.on_readable(backend_, [this] { receive_workers(); });
  events.on_readable(frontend_, [this] { receive_clients(); });
  events.on_notified(stop_, [&] {
    if (stopping_) return;
    stopping_ = true;
    drain_deadline = Clock::now() + std::chrono::milliseconds(options_.drain_timeout_ms);
    spdlog::info("broker stopping: refusing new jobs, draining {} waiting and {} on workers", jobs_.waiting(),
                 workers_.inflight_jobs());
  });
  events.every_wakeup([this] {
    on_timers(Clock::now());
    actor_calls_.tick(Clock::now());
    actor_calls_.pump();
  });
  events.every_wakeup([this] { flush_replies(); });  // what this wake-up answered, a message per client
  while (true) {
    redis_.tick(Clock::now());
    flush_replies();  // and what Redis's replies answered
    events.wait(kTick);
    if (stopping_ && (drained() || Clock::now() >= drain_deadline)) break;
  }
  shut_down();
  spdlog::info("broker {} stopped", options_.id);
}

void BrokerService::on_redis_transition() {
  redis_was_connected_ = redis_.connected();
  redis_generation_ = redis_.generation();
  leases_.on_redis(redis_was_connected_);
  // While Redis refuses the broker (a wrong password) it may close each connection: that was said once.
  if (!redis_was_connected_ && !redis_.refusal().empty())
    spdlog::debug("redis_outage: Redis refuses the broker ({}); reconnecting with backoff", redis_.refusal());
  else if (!redis_was_connected_)
    spdlog::warn(options_.fail_open
                     ? "redis_outage fail-open: admitting jobs against the quotas in force, counted by "
                       "this broker alone, until Redis is back; actor calls wait for Redis"
                     : "redis_outage fail-closed: new jobs are answered UNAVAILABLE until Redis is back");
  if (!redis_was_connected_) return;
  actor_calls_.store_reconnected();
  quotas_.publish(tenants_);  // Redis may have restarted empty
  epoch_.check();             // and if it did, it lost what actors and leases relied on
}

void BrokerService::on_store_lost(const std::string& why) {
  leases_.resync();
  quotas_.publish(tenants_);
  const std::size_t actors = actor_calls_.store_lost();
  metrics_.store_lost();
  spdlog::error(
      "redis: {} lost the fleet's data: {}. This broker rewrites its quota leases from the jobs it holds, "
      "and marks the {} actors it served lost: their calls get DATA_LOSS until each is reset (bridgectl actor "
      "reset). Run Redis with appendonly yes (docs/operations.md)",
      redis_.address().to_string(), why, actors);
}

void BrokerService::shut_down() {
  // Whatever did not finish in time is answered now, so no client waits for a job that is gone.
  const Status gone(StatusCode::kUnavailable, "the broker shut down before the job finished; send it again");
  for (Job* job : jobs_.all())
    if (!job->answered()) fail(*job, gone);
  std::vector<std::string> ids;
  for (const auto& [id, w] : workers_.workers()) ids.push_back(id);
  for (const auto& id : ids) {
    // Tells the worker, so that it says hello again at once to whichever broker binds next.
    core::Frames frames;
    frames.push_back(core::protocol::encode(core::protocol::Goodbye{"broker " + options_.id + " shutting down"}));
    send_to_worker(id, std::move(frames));
    for (Job* job : workers_.remove(id)) job->worker.clear();
  }
  // Jobs answered while a worker or a write held them: nothing will come back for them now.
  for (Job* job : jobs_.all()) {
    job->write_pending = false;
    release(*job);
  }
  flush_replies();
}

std::chrono::milliseconds BrokerService::liveness_ttl() const {
  return std::chrono::milliseconds(options_.heartbeat_ms) * options_.liveness;
}

bool BrokerService::drained() const { return jobs_.size() == 0; }

// ---- Clients ---------------------------------------------------------------------------------------

void BrokerService::drop_stalled_clients(Clock::time_point now) {
  for (const std::string& client : ledger_.sweep(now)) {
    std::size_t cancelled = 0;
    const Status dropped(StatusCode::kCancelled, "the client was dropped for not reading its results");
    std::vector<std::uint64_t> keys;
    for (const Job* job : jobs_.all())
      if (job->client == client && !job->answered()) keys.push_back(job->key);
    for (const std::uint64_t key : keys)
      if (Job* job = jobs_.find(key); job != nullptr && !job->answered()) {
        fail(*job, dropped);  // nothing is sent to a dropped client; a running job is stopped
        ++cancelled;
      }
    metrics_.client_dropped();
    spdlog::warn(
        "client {} dropped: {} bytes of results unread for over {} ms (max_unread_result_bytes {}, "
        "client_stall_ms); {} of its jobs cancelled, and it is sent nothing until those bytes drain",
        client, ledger_.unread_bytes(client), options_.client_stall_ms, options_.max_unread_result_bytes, cancelled);
  }
}

// ---- Timers ----------------------------------------------------------------------------------------

void BrokerService::on_timers(Clock::time_point now) {
  if (options_.tenants_reload_ms > 0 && now >= next_tenants_check_) {
    next_tenants_check_ = now + std::chrono::milliseconds(options_.tenants_reload_ms);
    check_tenants_file(false);
    if (options_.secure) check_workers_file(false);
  }
  // Every deadline, whatever the job's state, at the loop's resolution (kTick).
  answer_overdue(now);
  // The loop wakes for every message under load; what follows runs at most every kTick.
  if (now < next_sweep_) return;
  next_sweep_ = now + kTick;
  drop_stalled_clients(now);
  actor_store_.tick(now);
  if (redis_.refusal() != redis_refusal_seen_) {
    // Writes refused meanwhile (lease give-backs among them) are set right from this broker's state.
    if (redis_.refusal().empty()) leases_.resync();
    redis_refusal_seen_ = redis_.refusal();  // and for /readyz, read on the HTTP thread
    std::lock_guard lock(readiness_mutex_);
    redis_refusal_ = redis_refusal_seen_;
  }
  metrics_.fleet(jobs_.waiting(), workers_.inflight_jobs(), workers_.size(), actor_calls_.size(), redis_.connected(),
                 !redis_.refusal().empty(), ledger_.total_unread());
  metrics_.connections(frontend_monitor_->connections(), frontend_monitor_->open_files(),
                       frontend_monitor_->open_files_limit());
  if (now < next_heartbeat_) return;
  next_heartbeat_ = now + std::chrono::milliseconds(options_.heartbeat_ms);
  frontend_monitor_->check_descriptors(now);
  quotas_.keep_alive(liveness_ttl());
  epoch_.check();
  leases_.trim();
  actor_calls_.deactivate_idle(now);
  actor_calls_.retry_unverified();
  actor_calls_.renew_claims();
  for (const auto& id : workers_.silent_since(now, options_.liveness)) lose_worker(id, "silent past its liveness");
  const zmq::message_t heartbeat = core::protocol::encode(core::protocol::Heartbeat{});
  for (const auto& [id, w] : workers_.workers()) {
    core::Frames frames;
    frames.emplace_back().copy(const_cast<zmq::message_t&>(heartbeat));
    send_to_route(w.route, std::move(frames));
  }
}

}  // namespace bridge::broker
