// BrokerService: the actor half (see broker_service.hpp and docs/architecture.md, "Actors").
#include <spdlog/spdlog.h>

#include "bridge/broker/broker_service.hpp"
#include "bridge/core/job_codec.hpp"

namespace bridge::broker {

void BrokerService::actor_call_arrived(Job& job, const std::string& actor_id) {
  // Calls wait for their turns before their quota is asked, so their number and bytes are bounded
  // here, by the same limits: no tenant can park more in the broker than it may run.
  // A call to an idle actor takes its turn at once (and its quota is asked then): it does not wait.
  const TenantQuota* quota = tenants_.find(job.tenant);
  const ActorTable::Waiting waiting = actors_.waiting_of(job.tenant);
  const ActorEntry* known = actors_.find(job.actor);
  const bool will_wait = known != nullptr && (known->busy || !known->waiting.empty());
  if (quota != nullptr && options_.enforce_quotas && will_wait) {
    if (waiting.calls + 1 > quota->max_inflight_jobs)
      return fail(job, {StatusCode::kResourceExhausted, "tenant '" + job.tenant + "' has " + std::to_string(waiting.calls) +
                                                            " actor calls waiting for their actors' turns; its max_inflight_jobs is " +
                                                            std::to_string(quota->max_inflight_jobs) + "; retry after " +
                                                            std::to_string(options_.retry_after_ms) + " ms"},
                  options_.retry_after_ms);
    if (waiting.bytes + job.payload_bytes > quota->max_inflight_bytes)
      return fail(job, {StatusCode::kResourceExhausted, "tenant '" + job.tenant + "' has " + std::to_string(waiting.bytes) +
                                                            " input bytes in actor calls waiting for their turns; this call's " +
                                                            std::to_string(job.payload_bytes) + " would pass its max_inflight_bytes of " +
                                                            std::to_string(quota->max_inflight_bytes)},
                  options_.retry_after_ms);
  }
  ActorEntry& actor = actors_.get(job.tenant, actor_id);
  jobs_.set_state(job, JobState::kWaitingTurn);
  actors_.enqueue(actor, job);
  actors_.wake(actor.key);
}

void BrokerService::pump_actors() {
  // Taking a turn can end at once (a refusal releases it), which wakes the actor again: loop.
  for (auto keys = actors_.take_ready(); !keys.empty(); keys = actors_.take_ready()) {
    for (const auto& key : keys) {
      ActorEntry* actor = actors_.find(key);
      if (actor == nullptr || actor->busy || actor->waiting.empty()) continue;  // draining: queued calls still run
      Job* job = actors_.next_call(*actor);
      actor->busy = true;
      actor->last_used = Clock::now();
      job->holds_actor_turn = true;
      jobs_.set_state(*job, JobState::kAdmitting);
      admit(*job);
    }
  }
}

void BrokerService::start_actor_call(Job& job) {
  ActorEntry* actor = actors_.find(job.actor);
  if (actor == nullptr) return fail(job, {StatusCode::kInternal, "actor " + job.actor + " vanished while its call waited"});
  const WorkerRecord* holder = actor->worker.empty() ? nullptr : workers_.find(actor->worker);
  if (holder != nullptr && holder->incarnation == actor->incarnation && !holder->draining) {
    job.pinned_worker = holder->id;
    job.actor_version = actor->version;
    job.activate = false;
    return route(job);
  }
  // Not active anywhere (new, idle, or its worker left): activate it from its state in Redis.
  actor->worker.clear();
  const std::uint64_t key = job.key;
  jobs_.set_state(job, JobState::kLoadingActor);
  const bool asked = actor_store_.load(actor->tenant, actor->actor_id, /*with_data=*/true, [this, key](bool reachable, ActorState state) {
    Job* call = jobs_.find(key);
    if (call == nullptr || call->state != JobState::kLoadingActor) return;  // ended meanwhile
    if (!reachable)
      return fail(*call, {StatusCode::kUnavailable, "the actor state store (Redis) did not answer; retry later"},
                  options_.retry_after_ms);
    if (ActorEntry* entry = actors_.find(call->actor)) entry->version = state.version;
    call->pinned_worker.clear();
    call->activate = true;
    call->actor_version = state.version;
    call->activation = std::move(state.tensors);
    route(*call);
  });
  if (!asked)
    fail(job, {StatusCode::kUnavailable, "the actor state store (" + redis_.address().to_string() +
                                             ") is unreachable; retry later"},
         options_.retry_after_ms);
}

void BrokerService::on_activation_sent(Job& job, const WorkerRecord& worker) {
  job.activate = false;
  job.activation.clear();
  ActorEntry* actor = actors_.find(job.actor);
  if (actor == nullptr) return;
  actor->worker = worker.id;
  actor->incarnation = worker.incarnation;
  actor_store_.set_worker(actor->tenant, actor->actor_id, worker.id);
  spdlog::debug("actor {} activated on worker {} at version {}", actor->key, worker.id, actor->version);
}

void BrokerService::on_actor_result(WorkerRecord& worker, Job& job, core::Frames& frames, std::size_t returned) {
  ActorEntry* actor = actors_.find(job.actor);
  const auto* result = flatbuffers::GetRoot<wire::Envelope>(frames[1].data())->body_as_JobResult();
  if (actor == nullptr) return fail(job, {StatusCode::kInternal, "actor " + job.actor + " vanished during its call"});

  if (result->status() == wire::StatusCode::ACTOR_NOT_ACTIVE) {
    // The worker lost the activation (or holds an older one): reload from Redis and run it again.
    spdlog::info("worker {}: {}; reactivating", worker.id, core::view(result->message()));
    if (actor->worker == worker.id) actor->worker.clear();
    if (++job.reactivations > 2)
      return fail(job, {StatusCode::kInternal, "actor " + job.actor + " could not be activated: " +
                                                   std::string(core::view(result->message()))});
    return start_actor_call(job);
  }
  const std::size_t kept = result->kept() == nullptr ? 0 : result->kept()->size();
  core::Frames out;  // what the client gets: the header and the returned outputs
  for (std::size_t i = 1; i < 2 + returned; ++i) out.push_back(std::move(frames[i]));
  if (result->status() != wire::StatusCode::OK || kept == 0) return finish(job, std::move(out));

  // Write-through: the client hears of the call only once its new state is in Redis.
  std::vector<Tensor> tensors;
  for (std::size_t i = 0; i < kept; ++i)
    tensors.push_back(core::tensor_from_frame(*result->kept()->Get(static_cast<flatbuffers::uoffset_t>(i)),
                                              std::move(frames[2 + returned + i])));
  const TenantQuota* quota = tenants_.find(job.tenant);
  const std::uint64_t limit = quota == nullptr ? 0 : quota->max_resident_bytes;
  const std::uint64_t key = job.key;
  jobs_.set_state(job, JobState::kWritingThrough);
  job.write_pending = true;
  // The result waits with the write (shared: std::function needs a copyable callable).
  auto done = [this, key, result = std::make_shared<core::Frames>(std::move(out))](ActorStore::WriteResult r) {
    on_write_through(key, *result, r);
  };
  if (!actor_store_.write(actor->tenant, actor->actor_id, job.actor_version, worker.id, tensors, limit, done))
    done(ActorStore::WriteResult{});
}

void BrokerService::on_write_through(std::uint64_t key, core::Frames& result, const ActorStore::WriteResult& r) {
  Job* call = jobs_.find(key);
  if (call == nullptr) return;  // ended meanwhile (shutdown)
  call->write_pending = false;
  ActorEntry* entry = actors_.find(call->actor);
  if (r.written && entry != nullptr) entry->version = r.version;
  // Not saved: the worker's copy moved on without Redis, so it must not serve another call.
  if (!r.written && entry != nullptr) deactivate(*entry);
  if (call->answered()) return release(*call);  // its deadline passed during the write
  if (r.written) return finish(*call, std::move(result));
  if (!r.reachable)
    return fail(*call, {StatusCode::kUnavailable, "the call ran but the actor's new state could not be saved (" +
                                                     (r.error.empty() ? std::string("Redis connection lost") : r.error) +
                                                     "); its state is unchanged; retry"},
                options_.retry_after_ms);
  if (r.refusal == "max_resident_bytes") {
    const TenantQuota* q = tenants_.find(call->tenant);
    return fail(*call, {StatusCode::kResourceExhausted,
                        "tenant '" + call->tenant + "' actors would keep " + std::to_string(r.resident_bytes) +
                            " resident bytes, over its max_resident_bytes of " +
                            std::to_string(q == nullptr ? 0 : q->max_resident_bytes) +
                            "; the call's state change was not saved. Free tensors or raise the quota"});
  }
  fail(*call, {StatusCode::kAborted, "actor " + call->actor + " is at version " + std::to_string(r.version) +
                                         " in Redis, newer than the version " + std::to_string(call->actor_version) +
                                         " this call ran on (another broker served it); the call's state change was "
                                         "not saved; retry"});
}

void BrokerService::release_actor_turn(Job& job) {
  if (!job.holds_actor_turn) return;
  job.holds_actor_turn = false;
  if (ActorEntry* actor = actors_.find(job.actor)) {
    actor->busy = false;
    actor->last_used = Clock::now();
    actors_.wake(actor->key);
  }
}

void BrokerService::deactivate(ActorEntry& actor) {
  if (actor.worker.empty()) return;
  if (workers_.find(actor.worker) != nullptr) {
    flatbuffers::FlatBufferBuilder fbb(64);
    auto body = wire::CreateDeactivate(fbb, fbb.CreateString(actor.key));
    core::Frames frames;
    frames.push_back(core::finish_envelope(fbb, wire::Body::Deactivate, body.Union()));
    send_to_worker(actor.worker, std::move(frames));
  }
  actor_store_.set_worker(actor.tenant, actor.actor_id, "");
  actor.worker.clear();
}

void BrokerService::deactivate_idle_actors(Clock::time_point now) {
  for (const auto& key : actors_.idle_since(now - std::chrono::milliseconds(options_.actor_idle_ms))) {
    ActorEntry* actor = actors_.find(key);
    spdlog::debug("actor {} idle for {} ms: deactivated", key, options_.actor_idle_ms);
    deactivate(*actor);
    actors_.erase(key);
  }
}

void BrokerService::handle_actor_show(const std::string& client, const wire::ActorRequest& request) {
  const std::uint64_t request_id = request.request_id();
  const std::string tenant(core::view(request.tenant())), actor_id(core::view(request.actor_id()));
  auto send = [this, client, request_id](const Status& status, const ActorState* state, const std::string& worker,
                                         std::int64_t tenant_bytes) {
    flatbuffers::FlatBufferBuilder fbb(512);
    std::vector<flatbuffers::Offset<wire::TensorDesc>> resident;
    std::uint64_t bytes = 0;
    if (state != nullptr)
      for (const Tensor& t : state->tensors) {
        resident.push_back(core::add_tensor_desc(fbb, t));
        bytes += static_cast<std::uint64_t>(t.element_count()) * dtype_size(t.dtype());
      }
    auto body = wire::CreateActorReply(fbb, request_id, core::to_wire(status.code()), fbb.CreateString(status.message()),
                                       state != nullptr && state->found, state == nullptr ? 0 : state->version,
                                       fbb.CreateString(worker), fbb.CreateVector(resident), bytes,
                                       static_cast<std::uint64_t>(std::max<std::int64_t>(0, tenant_bytes)),
                                       state == nullptr ? 0 : state->updated_unix_ms);
    core::Frames frames;
    frames.push_back(core::finish_envelope(fbb, wire::Body::ActorReply, body.Union()));
    reply(client, std::move(frames));
  };
  if (tenant.empty() || actor_id.empty())
    return send({StatusCode::kInvalidArgument, "name both the tenant and the actor id"}, nullptr, "", 0);
  if (tenants_.find(tenant) == nullptr)
    return send({StatusCode::kUnknownTenant, "tenant '" + tenant + "' is not configured in " + options_.tenants_file},
                nullptr, "", 0);
  // Each costs Redis two commands on the connection admission uses: a flood must not delay admission.
  if (actor_queries_in_flight_ >= kMaxActorQueriesInFlight)
    return send({StatusCode::kUnavailable, "the broker is answering " + std::to_string(kMaxActorQueriesInFlight) +
                                               " actor requests already; retry in a moment"},
                nullptr, "", 0);
  ++actor_queries_in_flight_;
  auto answered = [this, send](const Status& status, const ActorState* state, const std::string& worker,
                               std::int64_t tenant_bytes) {
    --actor_queries_in_flight_;
    send(status, state, worker, tenant_bytes);
  };
  const std::string key = tenant + "/" + actor_id;
  const bool asked = actor_store_.load(tenant, actor_id, /*with_data=*/false, [=, this](bool reachable, ActorState state) {
    if (!reachable) return answered({StatusCode::kUnavailable, "Redis did not answer; retry"}, nullptr, "", 0);
    // This broker's own record is the freshest word on where the actor is active.
    const ActorEntry* actor = actors_.find(key);
    const std::string worker = actor != nullptr ? actor->worker : state.worker;
    auto shared = std::make_shared<ActorState>(std::move(state));
    if (!actor_store_.tenant_bytes(tenant, [=](bool ok, std::int64_t bytes) { answered({}, shared.get(), worker, ok ? bytes : 0); }))
      answered({}, shared.get(), worker, 0);
  });
  if (!asked) answered({StatusCode::kUnavailable, "Redis (" + redis_.address().to_string() + ") is unreachable; retry"}, nullptr, "", 0);
}

}  // namespace bridge::broker
