// BrokerService: workers, scheduling and results (see broker_service.hpp).
#include <algorithm>

#include <spdlog/spdlog.h>
#include <zmq_addon.hpp>

#include "bridge/broker/broker_service.hpp"
#include "bridge/core/frame_layouts.hpp"
#include "bridge/core/job_codec.hpp"
#include "bridge/core/liveness.hpp"
#include "bridge/core/protocol.hpp"

namespace bridge::broker {
namespace {

std::uint64_t micros(Clock::duration d) {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(d).count());
}

Status check_inline_outputs(const wire::JobResult& result, std::uint32_t asked) {
  if (result.outputs() == nullptr) return {};
  for (flatbuffers::uoffset_t i = 0; i < result.outputs()->size(); ++i) {
    const wire::TensorDesc& desc = *result.outputs()->Get(i);
    if (!core::is_inline(desc)) continue;
    if (asked == 0)  // an empty one too: such a client reads every output from a frame
      return {StatusCode::kMalformedMessage,
              "output " + std::to_string(i) + " is inline where the request took no inline outputs"};
    if (desc.data()->size() > asked)
      return {StatusCode::kMalformedMessage, "output " + std::to_string(i) + " is inline (" +
                                                 std::to_string(desc.data()->size()) + " bytes) where the request " +
                                                 "took inline outputs of at most " + std::to_string(asked)};
  }
  return {};
}

}  // namespace

void BrokerService::on_hello(std::string_view route, const std::string& key, const wire::Envelope& envelope) {
  core::protocol::WorkerHello hello;
  if (Status s = core::protocol::decode(envelope, options_.limits, hello); !s.is_ok()) {
    if (options_.secure && !worker_key_checks("", route, key)) return;
    spdlog::warn("worker connection {}: hello refused: {}", route, s.message());
    return;
  }
  if (options_.secure && !worker_key_checks(hello.worker_id, route, key)) return;
  if (!hello_fits(route, hello)) return;
  WorkerRecord record;
  record.id = hello.worker_id;
  record.route = std::string(route);
  record.incarnation = hello.incarnation;
  record.connection = hello.connection;
  record.device = std::move(hello.device);
  record.kernels = std::move(hello.kernels);
  record.slots = hello.slots;
  record.prefetch = hello.prefetch;
  record.heartbeat_ms = hello.heartbeat_ms;
  record.last_seen = Clock::now();
  std::vector<Job*> let_go;
  const auto [kind, worker] = workers_.upsert(std::move(record), let_go, hello.running);
  const std::string& id = worker.id;
  if (kind == HelloKind::kStale) {
    spdlog::debug("worker {}: ignored a hello from its connection {}, older than its connection {}", id,
                  hello.connection, worker.connection);
    return;
  }
  spdlog::info("worker {} {}: {} '{}', {} slots (+{} prefetch), {} kernels", id,
               kind == HelloKind::kNew ? "registered" : "re-registered", device_kind_name(worker.device.kind),
               worker.device.name, worker.slots, worker.prefetch, worker.kernels.size());
  metrics_.add_kernels(worker.kernels);
  // A new process under a known id: the old one's jobs will never be answered. A newer connection
  // of the same process: what was sent on older ones and is not held there never arrived (or its
  // result went down with the connection).
  if (!let_go.empty() && kind == HelloKind::kNewConnection)
    spdlog::warn("worker {} is on a new connection; {} job(s) sent on its older ones are not there, and run again", id,
                 let_go.size());
  // Only a new process counts against max_attempts: a job that went to a closed connection of a
  // live worker killed nothing (a partition can send a job there more than once).
  for (Job* job : let_go)
    worker_let_go(*job, id, kind == HelloKind::kNewProcess ? "it restarted" : "it did not hold the job",
                  kind == HelloKind::kNewProcess);
  // A Cancel sent on an older connection may not have arrived: the jobs it stopped are told again,
  // or the worker would run them on and be declared lost after cancel_grace_ms.
  if (kind == HelloKind::kNewConnection)
    for (const auto& [dispatch_id, job] : worker.inflight)
      if (job->answered()) send_cancel(*job, StatusCode::kCancelled);
  fleet_view_.publish(worker, std::chrono::milliseconds(worker.heartbeat_ms) * options_.liveness);
  metrics_.worker_seen(worker);
  dispatch_queued();
}

bool BrokerService::hello_fits(std::string_view route, const core::protocol::WorkerHello& hello) {
  const WorkerRecord* known = workers_.find(hello.worker_id);
  // One worker per connection: a hello naming another worker on a known worker's connection (a
  // confused worker, or its routing id taken over) ends that worker's registration.
  if (const WorkerRecord* at = workers_.find_by_route(route); at != nullptr && at != known) {
    const std::string other = at->id;
    lose_worker(other, "a hello for worker " + hello.worker_id + " came on its connection");
    spdlog::warn("worker {}: ignored its hello: it came on the connection of worker {} (one worker per connection)",
                 hello.worker_id, other);
    return false;
  }
  if (hello.running.empty()) return true;
  const bool same_process = known != nullptr && known->incarnation == hello.incarnation;
  if (same_process && hello.connection < known->connection) return true;  // stale: upsert() ignores it
  // Everything a worker holds from this broker is in its record until the worker answers it or is
  // let go. Jobs it holds that the record does not (a broker restarted, or one that declared the
  // worker lost meanwhile) would fill its slots behind the broker's back: it starts over instead,
  // stopping them before it says hello again (Reregister), and whatever the record held runs again.
  const bool all_held = same_process && std::all_of(hello.running.begin(), hello.running.end(),
                                                    [&](std::uint64_t id) { return known->inflight.contains(id); });
  if (all_held) return true;
  if (known != nullptr) lose_worker(hello.worker_id, "it holds jobs this broker did not give it");
  send_reregister(std::string(route), "the hello lists jobs this broker does not hold on this worker");
  return false;
}

void BrokerService::on_result(WorkerRecord& worker, core::Frames& frames) {
  auto* envelope = wire::GetMutableEnvelope(frames[1].data());
  auto* result = static_cast<wire::JobResult*>(envelope->mutable_body());
  auto it = worker.inflight.find(result->job_id());
  if (it == worker.inflight.end()) {
    // A late answer for a job already re-dispatched elsewhere (or ended): exactly-once delivery.
    spdlog::debug("worker {}: dropped result of unknown dispatch {}", worker.id, result->job_id());
    return;
  }
  // The slot is free again whatever the result says: the job no longer holds the worker's credit.
  Job& job = *it->second;
  worker.inflight.erase(it);
  // The worker stops a job at its tenant's max_job_ms by itself, and may say so before the
  // broker's timer does: the answer names the limit either way.
  const bool stopped_at_max_job = job.step_deadline != Clock::time_point::max() && Clock::now() >= job.step_deadline &&
                                  result->status() == wire::StatusCode::DEADLINE_EXCEEDED;
  const std::string ran_on = job.worker;
  job.worker.clear();
  job.dispatch_id = 0;
  job.step_deadline = Clock::time_point::max();
  ++worker.completed;
  // [worker id][header][returned outputs not inline...][kept tensors (actor calls)...]
  const core::ResultLayout layout = core::ResultLayout::of(*result);
  auto payload = std::span(frames).subspan(2);
  // An actor call that kept outputs moved its activation past Redis; if the write will not happen,
  // that activation must not serve again.
  auto drop_activation = [&] {
    if (result->status() == wire::StatusCode::OK && layout.kept > 0) actor_calls_.drop_activation(job.actor);
  };

  if (job.answered()) {
    // Answered while the worker held it (deadline, cancel): only the credit was still in use.
    spdlog::debug("worker {}: result of job {} arrived after its answer; dropped", worker.id, job.client_job_id);
    drop_activation();
    release(job);
  } else if (stopped_at_max_job) {
    fail(job, over_max_job_ms(job, ran_on));
  } else if (Clock::now() >= job.deadline) {
    // The result beat the deadline timer by less than a tick: still too late to forward.
    drop_activation();
    fail(job, result->status() == wire::StatusCode::DEADLINE_EXCEEDED
                  ? ran_past_deadline(job, worker.id)  // the worker stopped it at the deadline
                  : Status(StatusCode::kDeadlineExceeded,
                           "the job finished on worker " + worker.id +
                               " after its deadline; its result was dropped (raise timeout_ms)"));
  } else {
    std::uint64_t bytes = 0;
    Status valid = layout.check(payload.size());
    if (valid.is_ok())
      valid = core::validate_tensors(result->outputs(), layout.returned_frames(payload), options_.limits, bytes);
    if (valid.is_ok())
      valid = core::validate_tensors(result->kept(), layout.kept_frames(payload), options_.limits, bytes,
                                     {.inline_data = false});
    if (valid.is_ok() && job.actor.empty() && layout.kept > 0)
      valid = Status(StatusCode::kMalformedMessage, "kept outputs in the result of a job that is no actor call");
    // A client reads inline outputs only when it asked for them (a client that does not know of
    // them would take the next frame for that output): no larger ones are forwarded.
    if (valid.is_ok()) valid = check_inline_outputs(*result, job.inline_outputs);
    // A client sees only the protocol's codes, and ACTOR_NOT_ACTIVE never for a plain job.
    if (valid.is_ok() && *wire::EnumNameStatusCode(result->status()) == '\0')
      valid =
          Status(StatusCode::kMalformedMessage,
                 "status code " + std::to_string(static_cast<int>(result->status())) + " is not one of the protocol's");
    if (valid.is_ok() && job.actor.empty() && result->status() == wire::StatusCode::ACTOR_NOT_ACTIVE)
      valid = Status(StatusCode::kMalformedMessage, "ACTOR_NOT_ACTIVE in the result of a job that is no actor call");
    // The broker rewrites the worker-leg id and its own timing in place; the worker wrote these
    // fields with force_defaults so that they exist in the buffer (docs/protocol.md).
    wire::Timings* timings = result->mutable_timings();
    if (valid.is_ok() && (timings == nullptr || !result->mutate_job_id(job.client_job_id) ||
                          !result->mutate_attempts(static_cast<std::uint8_t>(std::min(job.attempts, 255)))))
      valid = Status(StatusCode::kMalformedMessage, "result lacks job_id, attempts or timings fields");
    if (!valid.is_ok()) {
      spdlog::error("worker {}: corrupt result for job {} of tenant {}: {}", worker.id, job.client_job_id, job.tenant,
                    valid.to_string());
      actor_calls_.drop_activation(job.actor);
      fail(job, {StatusCode::kInternal, "worker " + worker.id + " sent a result the broker cannot forward: " +
                                            valid.message()});
    } else {
      timings->mutate_queued_us(micros(job.dispatched - job.received));
      if (!job.actor.empty()) {
        const TenantQuota* quota = tenants_.find(job.tenant);
        actor_calls_.on_result(worker, job, frames, quota == nullptr ? 0 : quota->max_resident_bytes);
      } else {
        core::Frames out(std::make_move_iterator(frames.begin() + 1), std::make_move_iterator(frames.end()));
        finish(job, std::move(out));
      }
    }
  }
  if (worker.draining && worker.inflight.empty()) return remove_worker(worker.id);
  dispatch_queued();
}

void BrokerService::remove_worker(const std::string& id) {
  const std::string copy = id;  // `id` may live in the record being removed
  workers_.remove(copy);
  fleet_view_.remove(copy);
  metrics_.worker_gone(copy);
}

void BrokerService::lose_worker(const std::string& worker, const std::string& reason) {
  const std::string id = worker;  // `worker` may live in a job that worker_let_go() ends
  auto jobs = workers_.remove(id);
  fleet_view_.remove(id);
  metrics_.worker_gone(id);
  spdlog::warn("worker {} lost ({}); {} job(s) were on it", id, reason, jobs.size());
  for (Job* job : jobs) worker_let_go(*job, id, reason);
  dispatch_queued();
}

void BrokerService::worker_let_go(Job& job, const std::string& worker, const std::string& reason, bool lost) {
  job.worker.clear();
  job.dispatch_id = 0;
  job.step_deadline = Clock::time_point::max();
  // The activation died with its worker.
  actor_calls_.lost_worker(job, worker);
  if (job.answered()) return release(job);  // its client has its answer; nothing runs it again
  if (lost && ++job.losses >= static_cast<int>(options_.max_attempts))
    return fail(job, {StatusCode::kWorkerLost, "the job's worker was lost on each of " + std::to_string(job.losses) +
                                                   " attempts (last: " + worker + ", " + reason + ")"});
  // A plain job goes back to the front of its queue; an actor call keeps its turn and runs again
  // on state reloaded from Redis, which holds everything up to the call before it.
  if (job.actor.empty()) {
    jobs_.set_state(job, JobState::kQueued);
    return scheduler_.requeue(job);
  }
  actor_calls_.start(job);
}

bool BrokerService::send_dispatch(core::Frames& frames) {
  // frames[0] is the routing id of the worker's connection; the rest is the message.
  if (const std::uint64_t bytes = core::message_bytes(frames) - frames[0].size(); bytes >= core::kAnnouncedMessageBytes)
    announce_to_route(frames[0].to_string(), bytes);
  try {
    return zmq::send_multipart(backend_, frames, zmq::send_flags::dontwait).has_value();
  } catch (const zmq::error_t&) {
    return false;
  }
}

void BrokerService::on_dispatched(Job& job, WorkerRecord& worker) {
  if (job.activate) actor_calls_.activated(job, worker);
  metrics_.job_dispatched(job);
}

void BrokerService::send_reregister(const std::string& route, const std::string& reason) {
  core::Frames frames;
  frames.push_back(core::protocol::encode(core::protocol::Reregister{reason}));
  send_to_route(route, std::move(frames));
}

void BrokerService::send_deactivate(const std::string& worker, const std::string& actor_key) {
  core::Frames frames;
  frames.push_back(core::protocol::encode(core::protocol::Deactivate{actor_key}));
  send_to_worker(worker, std::move(frames));
}

}  // namespace bridge::broker
