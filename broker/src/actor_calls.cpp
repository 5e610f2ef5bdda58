#include "bridge/broker/actor_calls.hpp"

#include <algorithm>
#include <memory>
#include <utility>

#include <spdlog/spdlog.h>

#include "bridge/core/frame_layouts.hpp"
#include "bridge/core/wire.hpp"

namespace bridge::broker {

ActorCalls::ActorCalls(Options options, JobTable& jobs, WorkerRegistry& workers, ActorStateStore& store, Host& host)
    : options_(std::move(options)), jobs_(jobs), workers_(workers), store_(store), host_(host) {}

void ActorCalls::arrived(Job& call, const std::string& actor_id, const TenantQuota* quota) {
  // Calls wait for their turns before their quota is asked, so their number and bytes are bounded
  // here, by the same limits: no tenant can park more in the broker than it may run.
  // A call to an idle actor takes its turn at once (and its quota is asked then): it does not wait.
  const ActorTable::Waiting waiting = actors_.waiting_of(call.tenant);
  const ActorEntry* known = actors_.find(call.actor);
  const bool will_wait = known != nullptr && (known->busy || !known->waiting.empty());
  if (quota != nullptr && options_.enforce_quotas && will_wait) {
    const std::string tenant = "tenant '" + call.tenant + "' has ";
    if (waiting.calls + 1 > quota->max_inflight_jobs)
      return host_.fail(call,
                        {StatusCode::kResourceExhausted,
                         tenant + std::to_string(waiting.calls) +
                             " actor calls waiting for their actors' turns; its max_inflight_jobs is " +
                             std::to_string(quota->max_inflight_jobs) + "; retry after " +
                             std::to_string(options_.retry_after_ms) + " ms"},
                        options_.retry_after_ms);
    if (waiting.bytes + call.payload_bytes > quota->max_inflight_bytes)
      return host_.fail(call,
                        {StatusCode::kResourceExhausted,
                         tenant + std::to_string(waiting.bytes) +
                             " input bytes in actor calls waiting for their turns; this call's " +
                             std::to_string(call.payload_bytes) + " would pass its max_inflight_bytes of " +
                             std::to_string(quota->max_inflight_bytes)},
                        options_.retry_after_ms);
  }
  if (known == nullptr && quota != nullptr && actors_.count_of(call.tenant) >= quota->max_actors) {
    // Room for a new actor: the tenant's least recently used idle one goes (its state stays in the store).
    ActorEntry* idle = actors_.least_recently_used_idle(call.tenant);
    if (idle == nullptr)
      return host_.fail(
          call,
          {StatusCode::kResourceExhausted,
           "tenant '" + call.tenant + "' has " + std::to_string(actors_.count_of(call.tenant)) +
               " actors with calls in flight on this broker; its max_actors is " + std::to_string(quota->max_actors) +
               "; retry after " + std::to_string(options_.retry_after_ms) + " ms"},
          options_.retry_after_ms);
    spdlog::debug("actor {} deactivated: tenant {} is at its max_actors of {}", idle->key, call.tenant,
                  quota->max_actors);
    const std::string key = idle->key;
    deactivate(*idle);
    actors_.erase(key);
  }
  ActorEntry& actor = actors_.get(call.tenant, actor_id);
  jobs_.set_state(call, JobState::kWaitingTurn);
  actors_.enqueue(actor, call);
  actors_.wake(actor.key);
}

void ActorCalls::pump() {
  // Taking a turn can end at once (a refusal releases it), which wakes the actor again: loop.
  for (auto keys = actors_.take_ready(); !keys.empty(); keys = actors_.take_ready()) {
    for (const auto& key : keys) {
      ActorEntry* actor = actors_.find(key);
      if (actor == nullptr || actor->busy || actor->waiting.empty()) continue;  // draining: queued calls still run
      Job* call = actors_.next_call(*actor);
      actor->busy = true;
      actor->last_used = Clock::now();
      call->holds_actor_turn = true;
      jobs_.set_state(*call, JobState::kAdmitting);
      host_.admit(*call);
    }
  }
}

void ActorCalls::start(Job& call) {
  if (actors_.find(call.actor) == nullptr)
    return host_.fail(call, {StatusCode::kInternal, "actor " + call.actor + " vanished while its call waited"}, 0);
  jobs_.set_state(call, JobState::kLoadingActor);
  claim(call, Clock::now());
}

void ActorCalls::claimed(Job& call, std::uint64_t version, std::uint64_t lost_version) {
  const std::uint64_t key = call.key;
  ActorEntry* actor = actors_.find(call.actor);
  if (actor == nullptr)
    return host_.fail(call, {StatusCode::kInternal, "actor " + call.actor + " vanished while its call waited"}, 0);
  if (failed_lost(call, version, lost_version)) return;
  // Another broker served the actor since this one activated it: that activation is behind.
  if (version != actor->version) deactivate(*actor);
  const WorkerRecord* holder = actor->worker.empty() ? nullptr : workers_.find(actor->worker);
  if (holder != nullptr && holder->incarnation == actor->incarnation && !holder->draining) {
    call.pinned_worker = holder->id;
    call.actor_version = actor->version;
    call.activate = false;
    return host_.route(call);
  }
  // Not active anywhere (new, idle, behind, or its worker left): activate it from its state in the store.
  actor->worker.clear();
  const bool asked =
      store_.load(actor->tenant, actor->actor_id, /*with_data=*/true,
                  [this, key](bool reachable, ActorState state) { on_loaded(key, reachable, std::move(state)); });
  if (!asked)
    host_.fail(
        call,
        {StatusCode::kUnavailable, "the actor state store (" + options_.store_name + ") is unreachable; retry later"},
        options_.retry_after_ms);
}

bool ActorCalls::failed_lost(Job& call, std::uint64_t stored, std::uint64_t lost_version) {
  if (lost_version > 0) {
    fail_lost(call, lost_version, stored, /*newly_found=*/false);
    return true;
  }
  // Versions only grow (a reset moves them on too): a store holding less than this broker or the
  // client was told lost acknowledged state. Marked, so that every broker and client learns of it.
  ActorEntry* entry = actors_.find(call.actor);
  const std::uint64_t known = std::max(entry != nullptr ? entry->version : 0, call.actor_version_seen);
  if (stored >= known) return false;
  if (entry != nullptr) {
    store_.mark_lost(entry->tenant, entry->actor_id, known);
    deactivate(*entry);  // Redis no longer backs it
  }
  fail_lost(call, known, stored, /*newly_found=*/true);
  return true;
}

void ActorCalls::on_loaded(std::uint64_t key, bool reachable, ActorState state) {
  Job* call = jobs_.find(key);
  if (call == nullptr || call->state != JobState::kLoadingActor) return;  // ended meanwhile
  if (!reachable)
    return host_.fail(
        *call,
        {StatusCode::kUnavailable, "the actor state store (" + options_.store_name + ") did not answer; retry later"},
        options_.retry_after_ms);
  if (failed_lost(*call, state.version, state.lost_version)) return;
  if (ActorEntry* entry = actors_.find(call->actor)) entry->version = state.version;
  call->pinned_worker.clear();
  call->activate = true;
  call->actor_version = state.version;
  call->activation = std::move(state.tensors);
  host_.route(*call);
}

void ActorCalls::activated(Job& call, const WorkerRecord& worker) {
  call.activate = false;
  call.activation.clear();
  ActorEntry* actor = actors_.find(call.actor);
  if (actor == nullptr) return;
  actor->worker = worker.id;
  actor->incarnation = worker.incarnation;
  store_.set_worker(actor->tenant, actor->actor_id, worker.id);
  spdlog::debug("actor {} activated on worker {} at version {}", actor->key, worker.id, actor->version);
}

void ActorCalls::on_result(const WorkerRecord& worker, Job& call, core::Frames& frames,
                           std::uint64_t max_resident_bytes) {
  ActorEntry* actor = actors_.find(call.actor);
  const auto* result = flatbuffers::GetRoot<wire::Envelope>(frames[1].data())->body_as_JobResult();
  if (actor == nullptr)
    return host_.fail(call, {StatusCode::kInternal, "actor " + call.actor + " vanished during its call"}, 0);

  if (result->status() == wire::StatusCode::ACTOR_NOT_ACTIVE) {
    // The worker lost the activation (or holds an older one): reload from the store and run it again.
    spdlog::info("worker {}: {}; reactivating", worker.id, core::view(result->message()));
    if (actor->worker == worker.id) actor->worker.clear();
    if (++call.reactivations > 2)
      return host_.fail(call,
                        {StatusCode::kInternal, "actor " + call.actor + " could not be activated: " +
                                                    std::string(core::view(result->message()))},
                        0);
    return start(call);
  }
  // [worker id][header][returned outputs not inline...][kept tensors...]
  const core::ResultLayout layout = core::ResultLayout::of(*result);
  auto payload = std::span(frames).subspan(2);
  core::Frames out;  // what the client gets: the header and the returned outputs
  out.push_back(std::move(frames[1]));
  for (auto& frame : layout.returned_frames(payload)) out.push_back(std::move(frame));
  if (result->status() != wire::StatusCode::OK || layout.kept == 0) return host_.finish(call, std::move(out));

  // Write-through: the client hears of the call only once its new state is in the store.
  std::vector<Tensor> tensors;
  auto kept = layout.kept_frames(payload);
  for (std::size_t i = 0; i < kept.size(); ++i)
    tensors.push_back(
        core::tensor_from_frame(*result->kept()->Get(static_cast<flatbuffers::uoffset_t>(i)), std::move(kept[i])));
  const std::uint64_t key = call.key;
  jobs_.set_state(call, JobState::kWritingThrough);
  call.write_pending = true;
  // The result waits with the write (shared: std::function needs a copyable callable).
  auto done = [this, key, max_resident_bytes, result = std::make_shared<core::Frames>(std::move(out))](
                  ActorStateStore::WriteResult r) { on_written(key, result, max_resident_bytes, r); };
  if (!store_.write(actor->tenant, actor->actor_id, call.actor_version, worker.id, tensors, max_resident_bytes, done))
    done(ActorStateStore::WriteResult{});
}

void ActorCalls::on_written(std::uint64_t key, const std::shared_ptr<core::Frames>& result,
                            std::uint64_t max_resident_bytes, const ActorStateStore::WriteResult& r) {
  Job* call = jobs_.find(key);
  if (call == nullptr) return;  // ended meanwhile (shutdown)
  call->write_pending = false;
  ActorEntry* entry = actors_.find(call->actor);
  if (r.written && entry != nullptr) entry->version = r.version;
  // Not saved: the worker's copy moved on without the store, so it must not serve another call.
  if (!r.written && entry != nullptr) deactivate(*entry);
  if (call->answered()) return host_.release(*call);  // its deadline passed during the write
  if (r.written) return host_.finish(*call, std::move(*result));
  if (r.refusal == "unconfirmed") {
    // It keeps its turn, unanswered, until the store says whether the write landed.
    call->write_pending = true;
    spdlog::warn(
        "actor {}: the Redis connection went before its new state (version {}) was confirmed; the call "
        "is answered once Redis is back and says whether it kept it",
        call->actor, r.version);
    // Read at once if a connection is up already (a write confirmed only after the reconnect is
    // found unconfirmed then); otherwise at the reconnect, or the next retry.
    return verify({.call = key, .version = r.version, .result = result});
  }
  if (!r.reachable)
    return host_.fail(
        *call,
        {StatusCode::kUnavailable, "the call ran but the actor's new state could not be saved (" +
                                       (r.error.empty() ? std::string("Redis connection lost") : r.error) +
                                       "); its state is unchanged; retry"},
        options_.retry_after_ms);
  if (r.refusal == "lost") return fail_lost(*call, r.version, r.stored_version, /*newly_found=*/true);
  if (r.refusal == "max_resident_bytes")
    return host_.fail(*call,
                      {StatusCode::kResourceExhausted,
                       "tenant '" + call->tenant + "' actors would keep " + std::to_string(r.resident_bytes) +
                           " resident bytes, over its max_resident_bytes of " + std::to_string(max_resident_bytes) +
                           "; the call's state change was not saved. Free tensors or raise the quota"},
                      0);
  host_.fail(*call,
             {StatusCode::kAborted, "actor " + call->actor + " is at version " + std::to_string(r.version) +
                                        " in Redis, newer than the version " + std::to_string(call->actor_version) +
                                        " this call ran on (another broker served it, or it was reset); the call's "
                                        "state change was not saved; retry"},
             0);
}

void ActorCalls::ended(Job& call) {
  if (call.state == JobState::kWaitingTurn) actors_.remove_waiting(call);
  ActorEntry* actor = actors_.find(call.actor);
  if (call.holds_actor_turn) {
    call.holds_actor_turn = false;
    call.holds_actor_claim = false;
    if (actor != nullptr) {
      actor->busy = false;
      actor->last_used = Clock::now();
      actors_.wake(actor->key);
    }
  }
  // The claim goes with the turn to this broker's next call, unless none waits or another broker
  // asked for it (then that one goes first).
  if (actor != nullptr && !actor->busy && (actor->waiting.empty() || actor->claim_wanted)) release_claim(*actor);
}

void ActorCalls::drop_activation(const std::string& actor_key) {
  if (ActorEntry* actor = actor_key.empty() ? nullptr : actors_.find(actor_key)) deactivate(*actor);
}

void ActorCalls::lost_worker(const Job& call, const std::string& worker) {
  ActorEntry* actor = call.actor.empty() ? nullptr : actors_.find(call.actor);
  if (actor != nullptr && actor->worker == worker) actor->worker.clear();
}

void ActorCalls::deactivate(ActorEntry& actor) {
  if (actor.worker.empty()) return;
  if (workers_.find(actor.worker) != nullptr) host_.send_deactivate(actor.worker, actor.key);
  store_.set_worker(actor.tenant, actor.actor_id, "");
  actor.worker.clear();
}

void ActorCalls::fail_lost(Job& call, std::uint64_t lost, std::uint64_t stored, bool newly_found) {
  const std::string::size_type slash = call.actor.find('/');
  const std::string actor_id = slash == std::string::npos ? call.actor : call.actor.substr(slash + 1);
  // Once per finding, not per call, and at most one line per 10 s: a client may claim any version
  // of any of its actor ids (actor_version_seen), and must not flood the log with findings.
  std::uint64_t held_back = 0;
  if (newly_found) {
    const bool warn = lost_log_.take(Clock::now(), held_back);
    spdlog::log(warn ? spdlog::level::warn : spdlog::level::debug,
                "actor {}: its state had reached version {}, and {} holds {}; calls get DATA_LOSS until it is "
                "reset{}",
                call.actor, lost, options_.store_name, stored == 0 ? "none" : "version " + std::to_string(stored),
                held_back > 0 ? " (" + std::to_string(held_back) + " more such findings since the last line)" : "");
  }
  host_.fail(call,
             {StatusCode::kDataLoss,
              "actor " + call.actor + " lost its state: version " + std::to_string(lost) +
                  " was acknowledged, but Redis (" + options_.store_name + ") holds " +
                  (stored == 0 ? std::string("none of it") : "version " + std::to_string(stored)) +
                  " (it restarted without persistence, was flushed, or failed over to a replica that was behind). "
                  "The fleet cannot restore it: reset the actor (Actor::reset, bridgectl actor reset " +
                  call.tenant + " " + actor_id + ") and put its tensors again"},
             0);
}

void ActorCalls::store_reconnected() {
  for (ActorEntry* actor : actors_.all()) deactivate(*actor);
  retry_unverified();
}

void ActorCalls::retry_unverified() {
  // Each one is either asked now (and out of the list until its answer) or put back: never two
  // reads of one call's write at once.
  for (Unverified& u : std::exchange(unverified_, {})) verify(std::move(u));
}

void ActorCalls::verify(Unverified u) {
  Job* call = jobs_.find(u.call);
  const ActorEntry* actor = call == nullptr ? nullptr : actors_.find(call->actor);
  if (actor == nullptr) return;  // ended meanwhile (shutdown)
  auto check = [this, u](ActorStateStore::Settled s) mutable {
    Job* c = jobs_.find(u.call);
    if (c == nullptr) return;
    if (!s.reachable) return unverified_.push_back(std::move(u));  // asked again: reconnect or retry
    c->write_pending = false;
    ActorEntry* entry = actors_.find(c->actor);
    if (s.landed) {
      if (entry != nullptr) entry->version = s.version;
      if (c->answered()) return host_.release(*c);
      return host_.finish(*c, std::move(*u.result));
    }
    if (c->answered()) return host_.release(*c);
    if (s.lost_version > 0) return fail_lost(*c, s.lost_version, s.version, false);
    if (s.version < c->actor_version) return fail_lost(*c, c->actor_version, s.version, true);
    spdlog::info("actor {}: its write of version {} did not land; the call runs again from version {}", c->actor,
                 u.version, s.version);
    start(*c);
  };
  if (!store_.settle(actor->tenant, actor->actor_id, u.version, check)) unverified_.push_back(std::move(u));
}

std::size_t ActorCalls::store_lost() {
  std::size_t marked = 0;
  for (ActorEntry* actor : actors_.all()) {
    if (actor->version == 0) continue;  // never had state: nothing to lose
    store_.mark_lost(actor->tenant, actor->actor_id, actor->version);
    deactivate(*actor);
    ++marked;
  }
  return marked;
}

Status ActorCalls::reset(const std::string& tenant, const std::string& actor_id, ActorStateStore::ResetHandler done) {
  const std::string key = tenant + "/" + actor_id;
  if (ActorEntry* actor = actors_.find(key)) {
    if (actor->busy || !actor->waiting.empty())
      return {StatusCode::kAborted, "actor " + key + " has " +
                                        std::to_string(actor->waiting.size() + (actor->busy ? 1 : 0)) +
                                        " calls in flight; reset it once they have ended"};
    deactivate(*actor);
    actors_.erase(key);
  }
  auto logged = [key, done = std::move(done)](bool reachable, std::uint64_t version) {
    if (reachable && version != ActorStateStore::kResetRefusedBusy)
      spdlog::info("actor {} reset: its tensors and any loss mark dropped", key);
    done(reachable, version);
  };
  if (!store_.reset(tenant, actor_id, std::move(logged)))
    return {StatusCode::kUnavailable,
            "the actor state store (" + options_.store_name + ") is unreachable; retry later"};
  return {};
}

void ActorCalls::deactivate_idle(Clock::time_point now) {
  for (const auto& key : actors_.idle_since(now - std::chrono::milliseconds(options_.actor_idle_ms))) {
    spdlog::debug("actor {} idle for {} ms: deactivated", key, options_.actor_idle_ms);
    deactivate(*actors_.find(key));
    actors_.erase(key);
  }
}

}  // namespace bridge::broker
