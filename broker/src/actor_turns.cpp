// ActorCalls: an actor's turn claimed fleet-wide, in the store, so that calls through several brokers
// run one at a time (docs/architecture.md, "Actors", "One owner at a time, across brokers").
#include <algorithm>
#include <utility>
#include <vector>

#include "bridge/broker/actor_calls.hpp"

namespace bridge::broker {

void ActorCalls::claim(Job& call, Clock::time_point now) {
  ActorEntry& actor = *actors_.find(call.actor);
  // The last call of this broker left its claim to this one: no other broker ran the actor since, so
  // the version this broker knows is the store's (unless the client saw a newer one: then read it).
  if (!call.holds_actor_claim && !actor.claim.empty() && call.actor_version_seen <= actor.version) {
    call.holds_actor_claim = true;
    return claimed(call, actor.version, 0);
  }
  // Not before the last call's claim is given back (a claim sent behind it would take the turn again
  // at once: the give-back's answer sends it), nor while another broker is let in first.
  if (!call.holds_actor_claim && actor.unclaiming) {
    actor.claim_after_unclaim = call.key;
    return;
  }
  if (!call.holds_actor_claim && actor.yield_until > now) {
    claim_retries_.emplace(actor.yield_until, call.key);
    return;
  }
  const std::uint64_t key = call.key;
  const std::string token = actor.claim.empty() ? new_claim_token() : actor.claim;
  auto done = [this, key, token, actor_key = actor.key](ActorStateStore::Claim c) {
    Job* waiting = jobs_.find(key);
    if (waiting != nullptr && waiting->state == JobState::kLoadingActor) return on_claimed(key, token, c);
    ActorEntry* a = actors_.find(actor_key);
    if (c.owned && a != nullptr && (a->claim.empty() || a->claim == token) && !a->busy) {
      a->claim = token;  // its call ended meanwhile: given back
      release_claim(*a);
    }
  };
  if (!store_.claim(actor.tenant, actor.actor_id, token, options_.claim_ttl, std::move(done)))
    host_.fail(
        call,
        {StatusCode::kUnavailable, "the actor state store (" + options_.store_name + ") is unreachable; retry later"},
        options_.retry_after_ms);
}

void ActorCalls::on_claimed(std::uint64_t key, const std::string& token, const ActorStateStore::Claim& claim) {
  Job& call = *jobs_.find(key);
  if (!claim.reachable)
    return host_.fail(
        call,
        {StatusCode::kUnavailable, "the actor state store (" + options_.store_name + ") did not answer; retry later"},
        options_.retry_after_ms);
  if (!claim.owned) {  // another broker's call holds the actor: asked again, 2 ms doubling to 32 ms
    const int doubling = std::min(call.claim_tries++, 4);
    claim_retries_.emplace(Clock::now() + std::chrono::milliseconds(2 << doubling), key);
    return;
  }
  call.holds_actor_claim = true;
  if (ActorEntry* actor = actors_.find(call.actor)) actor->claim = token;
  claimed(call, claim.version, claim.lost_version);
}

void ActorCalls::tick(Clock::time_point now) {
  // Those due now, taken first: a claim refused again is due later, not in this tick.
  std::vector<std::uint64_t> due;
  for (auto it = claim_retries_.begin(); it != claim_retries_.end() && it->first <= now;)
    due.push_back(it->second), it = claim_retries_.erase(it);
  for (const std::uint64_t key : due) {
    Job* call = jobs_.find(key);
    if (call != nullptr && call->state == JobState::kLoadingActor && !call->holds_actor_claim) claim(*call, now);
  }
}

void ActorCalls::renew_claims() {
  for (ActorEntry* actor : actors_.all()) {
    if (actor->claim.empty()) continue;
    store_.renew(actor->tenant, actor->actor_id, actor->claim, options_.claim_ttl,
                 [this, key = actor->key, token = actor->claim](bool owned, bool wanted) {
                   ActorEntry* a = actors_.find(key);
                   if (a == nullptr || a->claim != token) return;
                   if (!owned) a->claim.clear();  // it expired (a stalled loop): the next call claims anew
                   if (owned && wanted) a->claim_wanted = true;  // given back at the end of the call now
                   if (owned && wanted && !a->busy && a->waiting.empty()) release_claim(*a);
                 });
  }
}

void ActorCalls::release_claim(ActorEntry& actor) {
  if (actor.claim.empty()) return;
  const std::string token = std::exchange(actor.claim, {});
  actor.claim_wanted = false;
  actor.unclaiming = true;
  store_.unclaim(actor.tenant, actor.actor_id, token, [this, key = actor.key](bool wanted) {
    ActorEntry* a = actors_.find(key);
    if (a == nullptr) return;
    a->unclaiming = false;
    // Another broker's call waited meanwhile: it goes first (its retries are at most 32 ms apart).
    const Clock::time_point now = Clock::now();
    if (wanted) a->yield_until = now + kYieldToOtherBroker;
    Job* next = jobs_.find(std::exchange(a->claim_after_unclaim, 0));
    if (next != nullptr && next->state == JobState::kLoadingActor && !next->holds_actor_claim) claim(*next, now);
  });
}

}  // namespace bridge::broker
