#include "bridge/worker/worker_service.hpp"

#include <algorithm>
#include <array>
#include <limits>
#include <utility>

#include <spdlog/spdlog.h>
#include <zmq_addon.hpp>

#include "bridge/core/broker_watch.hpp"
#include "bridge/core/endpoint.hpp"
#include "bridge/core/job_codec.hpp"
#include "bridge/core/liveness.hpp"
#include "bridge/core/protocol.hpp"
#include "bridge/core/protocol_jobs.hpp"

namespace bridge::worker {
namespace {

constexpr int kMaxReceivesPerWakeup = 256;

// The bytes of the result an execution will send: its last step's outputs, returned or kept.
std::uint64_t planned_result_bytes(Execution& execution) {
  std::uint64_t bytes = 0;
  for (const OutputSpec& spec : execution.step_planned(execution.step_count() - 1))
    bytes += static_cast<std::uint64_t>(element_count(spec.shape)) * dtype_size(spec.dtype);
  return bytes;
}

std::uint64_t micros_between(std::chrono::steady_clock::time_point a, std::chrono::steady_clock::time_point b) {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(b - a).count());
}

}  // namespace

WorkerService::WorkerService(WorkerOptions options, std::shared_ptr<Backend> backend, const KernelRegistry& kernels)
    : options_(std::move(options)),
      backend_(std::move(backend)),
      kernels_(kernels),
      id_(options_.id.empty() ? core::default_process_id() : options_.id),
      incarnation_(core::random_u64()),
      context_(1),
      metrics_(options_),
      batcher_(options_.batching()),
      decoder_(kernels_, options_.limits, actors_, id_),
      // The broker's header limit is taken to be this worker's (as for inline outputs).
      gathered_answers_(std::min<std::uint64_t>(core::kMaxBatchBytes, options_.limits.max_header_bytes)) {
  options_.validate();
  brokers_ = core::parse_broker_list(options_.broker);
  curve_ = core::read_client_keys(options_.key_file, options_.broker_key_file, /*from_environment=*/false);
  own_sends_.configure(options_.link_floor_mib_s, options_.limits);
  completion_ = [this](std::unique_ptr<Execution> e) { on_complete(std::move(e)); };
}

WorkerService::~WorkerService() { backend_->wait_idle(); }

void WorkerService::stop() noexcept { stop_.notify(); }

void WorkerService::connect() {
  // The connection being replaced goes at once: left to linger with its queue, it reconnected under
  // the same routing id, and the broker's ROUTER_HANDOVER passed the id back and forth between it and
  // the new one, so that neither's hello got through (a worker that never registered with a
  // restarted broker, under load).
  if (socket_) {
    flush_answers();  // on the connection they were made for, as they would have gone at once
    socket_->set(zmq::sockopt::linger, 0);
  }
  socket_ = std::make_unique<zmq::socket_t>(context_, zmq::socket_type::dealer);
  // A routing id of its own for each connection: the broker sends only to the connection of the
  // worker's latest hello, so a job can never go to a connection that is gone while the broker
  // believes it went to this one (with one id for all, libzmq routes it to whichever connection
  // attached last, a closed one's stale hello included), and the hello's list of what the worker
  // holds tells exactly what the older connections lost.
  ++connection_;
  connection_up_ = connection_lost_ = false;
  broker_reads_batches_ = false;  // until this connection's broker says so (Envelope.batches)
  socket_->set(zmq::sockopt::routing_id, id_ + "/" + core::random_hex(64));
  socket_->set(zmq::sockopt::linger, 1000);
  // A connection whose peer is gone (a host down, a partition) is found by ZeroMQ's own heartbeats,
  // answered by the broker's I/O thread: no answer for this long closes it, and libzmq connects again
  // on the same socket, keeping what is queued. Long enough that a broker that only stalls (a pause,
  // or its I/O thread busy with the largest message the limits allow) keeps the connection, and
  // with it the results already on their way.
  const auto window = std::chrono::milliseconds(options_.heartbeat_ms) * options_.liveness;
  socket_->set(zmq::sockopt::heartbeat_ivl, static_cast<int>(options_.heartbeat_ms));
  const auto timeout = (window * kMaxSilenceBackoff + own_sends_.cap()).count();  // cap: the largest message
  socket_->set(zmq::sockopt::heartbeat_timeout,
               static_cast<int>(std::min<std::int64_t>(timeout, std::numeric_limits<int>::max())));
  socket_->set(zmq::sockopt::maxmsgsize,
               static_cast<std::int64_t>(options_.limits.max_job_bytes + options_.limits.max_header_bytes));
  core::apply_curve_client(*socket_, curve_);
  handshakes_ = std::make_unique<core::HandshakeMonitor>(context_, *socket_);
  // Every endpoint of the list is tried at the first connection: a malformed one fails now (ConfigError).
  core::connect_checking_all(*socket_, broker(), std::exchange(endpoints_checked_, true) ? no_others_ : brokers_);
  last_heard_ = Clock::now();
  if (!hello_after_orphans_) send_hello();
}

void WorkerService::move_to_broker(std::size_t index, const std::string& why) {
  const std::string left = broker();
  broker_index_ = index % brokers_.size();
  silence_backoff_ = 1;
  going_home_ = false;
  home_probe_.reset();
  // The jobs running here came from the broker left behind, and their results cannot reach it: they
  // are stopped and their results dropped, and the next broker hears this worker's hello only once
  // they have stopped (or drain_timeout_ms has passed), so that no slot serves two brokers at once
  // and no tenant runs more than its quota. Its actors' activations were that broker's too.
  orphan_jobs("the worker left broker " + left);
  actors_.clear();
  hello_after_orphans_ = !orphaned_.empty();
  hello_by_ = Clock::now() + std::chrono::milliseconds(options_.drain_timeout_ms);
  spdlog::warn(
      "worker {}: broker {} {}; moving to broker {}{}", id_, left, why, broker(),
      orphaned_.empty() ? "" : " once the " + std::to_string(orphaned_.size()) + " job(s) it gave have stopped");
  connect();
}

void WorkerService::orphan_jobs(const std::string& why) {
  for (auto& [dispatch_id, job] : running_) {
    stop(job, StatusCode::kCancelled, why);
    orphaned_.insert(dispatch_id);
  }
}

void WorkerService::send_hello() {
  core::Frames frames;
  frames.push_back(core::protocol::encode(core::protocol::WorkerHello{.worker_id = id_,
                                                                      .incarnation = incarnation_,
                                                                      .device = backend_->device(),
                                                                      .kernels = kernels_.names(),
                                                                      .slots = options_.slots,
                                                                      .heartbeat_ms = options_.heartbeat_ms,
                                                                      .prefetch = options_.prefetch,
                                                                      .connection = connection_,
                                                                      .running = running_dispatches()}));
  send(frames);
  last_hello_ = Clock::now();
  next_heartbeat_ = Clock::now() + std::chrono::milliseconds(options_.heartbeat_ms);
}

void WorkerService::send_heartbeat() {
  const DeviceMetrics device = backend_->metrics();
  const auto liveness = std::chrono::milliseconds(options_.heartbeat_ms) * options_.liveness;
  metrics_.heartbeat(inflight_, Clock::now() - last_heard_ <= liveness, actors_.size(), actors_.resident_bytes(),
                     device);
  core::Frames frames;
  frames.push_back(core::protocol::encode(
      core::protocol::Heartbeat{.inflight = inflight_, .metrics = device, .incoming_bytes = results_coming()}));
  send(frames);
  next_heartbeat_ = Clock::now() + std::chrono::milliseconds(options_.heartbeat_ms);
}

std::uint64_t WorkerService::results_coming() const {
  std::uint64_t bytes = 0;
  for (const auto& [dispatch_id, job] : running_) bytes += job.result_bytes;
  return bytes >= core::kAnnouncedMessageBytes ? bytes : 0;
}

void WorkerService::send_goodbye(const std::string& reason) {
  core::Frames frames;
  frames.push_back(core::protocol::encode(core::protocol::Goodbye{reason}));
  send(frames);
}

void WorkerService::run() {
  connect();
  spdlog::info("worker {} on {} ({}, {} slots, {} prefetch, kernels: {}), connecting to {}{}", id_,
               backend_->device().name, device_kind_name(backend_->device().kind), options_.slots, options_.prefetch,
               fmt::join(kernels_.names(), ","), broker(), curve_.enabled() ? " (CURVE)" : "");
  if (!curve_.enabled())
    spdlog::warn(
        "worker {}: no key_file and broker_key_file: CURVE is off, so only a broker with security: none "
        "will take this worker (docs/security.md)",
        id_);
  const auto heartbeat = std::chrono::milliseconds(options_.heartbeat_ms);
  bool draining = false;
  Clock::time_point drain_deadline;
  // The order of work on each wake-up: handshake outcomes, finished jobs' results, the broker's
  // messages, the batches those messages completed, then a stop request.
  core::PollSet events;
  events.on_readable_seldom([this] { return handshakes_->handle(); }, [this] { log_handshakes(); });
  events.on_notified(completed_signal_, [this] { send_completed(); });
  events.on_readable([this] { return socket_->handle(); }, [this] { receive(); });
  // After a read of the socket: jobs that arrived together form their batches now.
  events.every_wakeup([&] {
    launch_batches(batcher_.take_due(draining ? Clock::time_point::max() : Clock::now()));
    answer_stopped_waiting();  // those the broker's messages stopped
    flush_answers();           // everything this wake-up answered, in one message
  });
  events.on_notified(stop_, [&] {
    if (draining) return;
    draining = true;
    drain_deadline = Clock::now() + std::chrono::milliseconds(options_.drain_timeout_ms);
    // Goodbye first: the broker stops dispatching here but still takes the results of jobs in flight.
    send_goodbye("shutting down");
    spdlog::info("worker {} stopping: draining {} job(s) in flight", id_, inflight_);
  });
  while (true) {
    const auto now = Clock::now();
    auto wake = std::min(next_heartbeat_, stop_overdue_jobs(now));
    answer_stopped_waiting();  // a waiting job past its deadline is answered now, not when a slot frees
    if (auto due = batcher_.next_due()) wake = std::min(wake, *due);
    // Round up: a batch due in 300 us must not turn into a busy loop of zero-timeout polls.
    auto wait = std::chrono::ceil<std::chrono::milliseconds>(wake - now);
    flush_answers();  // those answered since the last wake-up (overdue jobs, say)
    events.wait(std::clamp(wait, std::chrono::milliseconds(0), heartbeat));
    if (draining && (inflight_ == 0 || Clock::now() >= drain_deadline)) break;

    if (Clock::now() >= next_heartbeat_) send_heartbeat();
    if (hello_after_orphans_ && (orphaned_.empty() || Clock::now() >= hello_by_)) {
      hello_after_orphans_ = false;
      send_hello();
    }
    // A connection the broker's side closed (killed, or gone with its host): with other brokers to
    // go to, the next one at once; else a new connection to the same broker, with a hello. libzmq
    // would reconnect the same socket under the same routing id, and what the broker sent before
    // the close would be lost without the broker knowing (the new hello lists what arrived).
    // Only a connection that was up: libzmq reports a refused handshake as a close too, and retries
    // that itself every 100 ms, where a new socket each time would hammer the broker.
    const bool closed = std::exchange(broker_disconnected_, false);
    const bool was_up = std::exchange(connection_lost_, false);
    if (!draining && !hello_after_orphans_) {
      if (closed && brokers_.size() > 1) {
        move_to_broker(broker_index_ + 1, "closed the connection");
      } else if (was_up && brokers_.size() == 1) {
        spdlog::info("broker {} closed the connection; connecting again", broker());
        connect();
      }
    }
    if (!draining && !hello_after_orphans_) come_home(Clock::now());
    const auto window = heartbeat * options_.liveness * silence_backoff_;
    const auto since = std::max(last_heard_, last_hello_);
    if (!draining && !hello_after_orphans_ &&
        Clock::now() - since - own_sends_.excused(since, Clock::now()) > window + broker_grace_) {
      // First a hello on the same connection, behind whatever is queued on it: a broker that only
      // stalled (or is busy with a large transfer) keeps its jobs (same incarnation) and reads the
      // results waiting for it, which a new connection would throw away. Still silent after that: a
      // new connection, for a connection that is broken on the broker's side (another enrolled key
      // took this worker's id, say), or, with other brokers to go to, the next broker.
      const bool reconnect = silence_backoff_ > 1;
      const auto silent_ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - last_heard_).count();
      if (reconnect && brokers_.size() > 1) {
        move_to_broker(broker_index_ + 1, "silent for " + std::to_string(silent_ms) + " ms");
        continue;
      }
      silence_backoff_ = std::min(silence_backoff_ * 2, kMaxSilenceBackoff);
      spdlog::warn("broker {} silent for {} ms; {} (next wait {} ms)", broker(), silent_ms,
                   reconnect ? "reconnecting" : "saying hello again",
                   (heartbeat * options_.liveness * silence_backoff_).count());
      if (reconnect) {
        connect();
      } else {
        send_hello();
      }
    }
  }
  if (inflight_ > 0)
    spdlog::warn("worker {} stopped with {} job(s) unfinished after {} ms; the broker re-dispatches them", id_,
                 inflight_, options_.drain_timeout_ms);
  stop_everything();
  spdlog::info("worker {} stopped", id_);
}

void WorkerService::come_home(Clock::time_point now) {
  if (brokers_.size() < 2 || broker_index_ == 0) return;
  // Away from the first broker of the list: asked now and then whether it answers again. Once it
  // does, this broker is told goodbye (it sends nothing new, and takes the results of what runs
  // here), and the worker goes back once those are done: a broker that restarted gets its workers.
  const auto every = std::chrono::milliseconds(options_.heartbeat_ms) * options_.liveness * 3;
  if (!going_home_ && home_probe_.poll(brokers_[0], every, now) == HomeProbe::Answer::kAlive) {
    going_home_ = true;
    home_by_ = now + std::chrono::milliseconds(options_.drain_timeout_ms);
    spdlog::info("worker {}: its first broker {} answers again; going back once the {} job(s) here are done", id_,
                 brokers_[0], inflight_);
    send_goodbye("going back to broker " + brokers_[0]);
  }
  if (going_home_ && (inflight_ == 0 || now >= home_by_)) move_to_broker(0, "is not this worker's first broker");
}

void WorkerService::log_handshakes() {
  handshakes_->drain(
      curve_.enabled(), "workers_file",
      [this] {
        if (!handshake_failure_.empty()) spdlog::info("worker {}: the broker accepted the handshake again", id_);
        handshake_failure_.clear();
        connection_up_ = true;
      },
      [this](const std::string& why) {
        if (why != handshake_failure_) spdlog::error("worker {}: cannot register: {}", id_, why);
        handshake_failure_ = why;
      },
      [this] {  // acted on in run(): the monitor must outlive this call
        broker_disconnected_ = true;
        if (std::exchange(connection_up_, false)) connection_lost_ = true;
      });
}

void WorkerService::receive() {
  core::receive_batch(*socket_, kMaxReceivesPerWakeup, [this](core::Frames& frames) { return handle_message(frames); });
}

bool WorkerService::handle_message(core::Frames& frames) {
  last_heard_ = Clock::now();
  broker_grace_ = std::chrono::milliseconds(0);
  silence_backoff_ = 1;
  const wire::Envelope* envelope = nullptr;
  const Status decoded = frames.empty() ? Status(StatusCode::kMalformedMessage, "empty message")
                                        : core::decode_envelope(frames[0], options_.limits, envelope);
  if (!decoded.is_ok()) {
    spdlog::error("dropped a message from the broker: {}", decoded.to_string());
    return true;
  }
  if (envelope->batches()) broker_reads_batches_ = true;
  namespace protocol = core::protocol;
  switch (envelope->body_type()) {
    case wire::Body::Dispatch: handle_dispatch(*envelope->body_as_Dispatch(), frames); break;
    case wire::Body::Heartbeat: {  // liveness, and perhaps the size of what comes next
      protocol::Heartbeat heartbeat;
      (void)protocol::decode(*envelope, heartbeat);  // the body type is known: it cannot fail
      broker_grace_ = core::transfer_grace(heartbeat.incoming_bytes, options_.link_floor_mib_s, options_.limits);
      break;
    }
    case wire::Body::Cancel: {
      protocol::Cancel cancel;
      (void)protocol::decode(*envelope, cancel);
      stop_job(cancel.dispatch_id, cancel.reason,
               cancel.reason == StatusCode::kDeadlineExceeded
                   ? "the job's deadline passed while it ran on worker " + id_
                   : "the job was cancelled while it ran on worker " + id_);
      break;
    }
    case wire::Body::Deactivate: {
      protocol::Deactivate deactivate;
      (void)protocol::decode(*envelope, deactivate);
      actors_.deactivate(deactivate.actor);
      spdlog::debug("actor {} deactivated ({} activations left)", deactivate.actor, actors_.size());
      break;
    }
    case wire::Body::Goodbye: {
      // The broker is going away. A fresh connection says hello as soon as a broker binds the
      // endpoint again, rather than after `liveness` silent heartbeats.
      protocol::Goodbye goodbye;
      (void)protocol::decode(*envelope, goodbye);
      if (brokers_.size() > 1) {
        move_to_broker(broker_index_ + 1, "is going away (" + goodbye.reason + ")");
      } else {
        spdlog::info("broker {} is going away ({}); reconnecting", broker(), goodbye.reason);
        connect();
      }
      return false;  // the old socket is gone; nothing more to read from it
    }
    case wire::Body::Reregister: {
      protocol::Reregister reregister;
      (void)protocol::decode(*envelope, reregister);
      spdlog::info("broker asked for a new hello ({})", reregister.reason);
      // It does not know this worker: whatever it sent here was answered or sent elsewhere already.
      // They are stopped, and the hello waits for them (or drain_timeout_ms), as when moving to
      // another broker, so that no job it sends now waits behind one nobody wants.
      if (hello_after_orphans_) break;
      orphan_jobs("broker " + broker() + " no longer holds this job");
      hello_after_orphans_ = !orphaned_.empty();
      hello_by_ = Clock::now() + std::chrono::milliseconds(options_.drain_timeout_ms);
      if (!hello_after_orphans_) send_hello();
      break;
    }
    default: spdlog::warn("ignored a {} message from the broker", wire::EnumNameBody(envelope->body_type()));
  }
  return true;
}

void WorkerService::handle_dispatch(const wire::Dispatch& dispatch, core::Frames& frames) {
  const auto received = Clock::now();
  std::unique_ptr<Execution> execution;
  if (Status status = decoder_.decode(dispatch, frames, received, execution); !status.is_ok())
    return answer_error(dispatch.dispatch_id(), status);
  const std::uint64_t dispatch_id = execution->dispatch_id;
  execution->transfer_us = micros_between(received, Clock::now());
  ++inflight_;
  const std::uint64_t result_bytes = planned_result_bytes(*execution);
  running_[dispatch_id] = {execution->deadline, execution->cancel, result_bytes};
  // A large result is announced now, while its job runs, and in every heartbeat until it is sent.
  if (result_bytes >= core::kAnnouncedMessageBytes) {
    core::Frames announcement;
    announcement.push_back(
        core::protocol::encode(core::protocol::Heartbeat{.inflight = inflight_, .incoming_bytes = results_coming()}));
    send(announcement);
  }
  // A job the backend runs on this thread shares nothing with others: no launch, no hand-off.
  if (!batcher_.eligible(*execution) || backend_->runs_inline(*execution)) return launch(std::move(execution));
  if (auto full = batcher_.add(std::move(execution), Clock::now())) {
    std::vector<DynamicBatcher::Group> groups;
    groups.push_back(std::move(*full));
    launch_batches(std::move(groups));
  }
}

void WorkerService::launch_batches(std::vector<DynamicBatcher::Group> groups) {
  for (auto& group : groups) {
    const auto start = Clock::now();
    std::unique_ptr<Execution> combined = stack_batch(std::move(group));
    if (combined->batch_size > 1) combined->transfer_us = micros_between(start, Clock::now());
    link_batch(*combined);
    launch(std::move(combined));
  }
}

void WorkerService::stop_job(std::uint64_t dispatch_id, StatusCode code, const std::string& message) {
  auto it = running_.find(dispatch_id);
  if (it == running_.end()) return;  // answered already: the result is on its way
  if (!it->second.cancel->requested()) spdlog::info("stopping job dispatch {}: {}", dispatch_id, message);
  stop(it->second, code, message);
}

WorkerService::Clock::time_point WorkerService::stop_overdue_jobs(Clock::time_point now) {
  // The broker also sends Cancel at the deadline; stopping here too keeps the slot's time bounded
  // when that message is late or lost.
  auto next = Clock::time_point::max();
  for (auto& [dispatch_id, job] : running_) {
    if (job.cancel->requested()) continue;
    const auto run_limit = job.cancel->run_limit();  // set once it started: its tenant's max_job_ms
    if (job.deadline <= now) {
      stop(job, StatusCode::kDeadlineExceeded, "the job's deadline passed while it was on worker " + id_);
    } else if (run_limit <= now) {
      stop(job, StatusCode::kDeadlineExceeded,
           "the job ran for its tenant's max_job_ms on worker " + id_ + " and was stopped");
    } else {
      next = std::min({next, job.deadline, run_limit});
    }
  }
  return next;
}

}  // namespace bridge::worker
