#pragma once
/// @file ActorCalls: an actor's calls taking turns, its activation on a worker, and write-through.

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "bridge/broker/actor_store.hpp"
#include "bridge/broker/actor_table.hpp"
#include "bridge/broker/job_table.hpp"
#include "bridge/broker/tenants.hpp"
#include "bridge/broker/throttled_log.hpp"
#include "bridge/broker/worker_registry.hpp"
#include "bridge/status.hpp"

namespace bridge::broker {

/// An actor's calls run one at a time, in arrival order (docs/architecture.md, "Actors"): a call
/// waits in the actor's queue (WaitingTurn), is admitted when its turn comes (so that quota waits
/// never reorder an actor's calls), goes to the worker holding the actor's activation or activates
/// the actor there from its state in the store (LoadingActor), and, if it kept outputs, is answered
/// only once they are written through to the store (WritingThrough). A write the store refuses or
/// never makes deactivates the worker's copy, which may then be ahead of the store.
///
/// It touches no socket and no Redis connection: the broker is its Host, the store an interface,
/// so it is unit-tested with neither. Loop thread only.
class ActorCalls {
 public:
  /// What actor calls need of the broker: admission, routing, the job's one answer and its end,
  /// and a message to a worker.
  class Host {
   public:
    /// The call holds its actor's turn: ask for its tenant's quota; start() follows once admitted.
    virtual void admit(Job& call) = 0;
    /// To a worker: the one in `call.pinned_worker` if set, else any that can run it.
    virtual void route(Job& call) = 0;
    /// Forwards a result ([header][returned outputs...]) to the client and ends the call.
    virtual void finish(Job& call, core::Frames result) = 0;
    virtual void fail(Job& call, const Status& status, std::uint32_t retry_after_ms) = 0;
    /// Ends a call that was answered already.
    virtual void release(Job& call) = 0;
    /// Tells `worker` to drop its activation of the actor `actor_key`.
    virtual void send_deactivate(const std::string& worker, const std::string& actor_key) = 0;

   protected:
    ~Host() = default;
  };

  struct Options {
    bool enforce_quotas = true;
    std::uint32_t retry_after_ms = 1000;
    std::uint32_t actor_idle_ms = 300000;  ///< an actor without calls this long is deactivated
    std::string store_name;                ///< where actors' state lives, for messages
    /// Unique to this broker process: with a call's key, the token of its claim on its actor.
    std::string owner = "broker";
    /// How long a claim lasts unless renewed (renew_claims(), each heartbeat): how long the other
    /// brokers wait for an actor whose broker died during its call.
    std::chrono::milliseconds claim_ttl{3000};
  };

  ActorCalls(Options options, JobTable& jobs, WorkerRegistry& workers, ActorStateStore& store, Host& host);

  /// A verified call to `call.actor` ("<tenant>/<actor id>"): it waits behind the actor's earlier
  /// calls, or takes the turn at the next pump() when the actor is idle. Calls that would wait are
  /// bounded by the tenant's `quota` (its number and bytes in flight), since they are not admitted
  /// yet; null: no quota (quotas not enforced). Refused RESOURCE_EXHAUSTED past it.
  void arrived(Job& call, const std::string& actor_id, const TenantQuota* quota);
  /// Gives each woken actor's turn to its next call, and Host::admit()s that call. Run after each
  /// batch of events: turns are taken here, never inside an ending.
  void pump();
  /// An admitted call, or one whose worker was lost: it claims the actor's turn fleet-wide (waiting,
  /// with backoff, while another broker's call holds it), then goes to the worker holding the
  /// activation, or the actor is activated from the store first (UNAVAILABLE if the store cannot
  /// be read). An activation older than the store's version (another broker served the actor since)
  /// is dropped.
  void start(Job& call);
  /// Claims again for the calls whose backoff is over. Call on every wake-up of the loop.
  void tick(Clock::time_point now);
  /// Renews the claims of the calls running now. Call each heartbeat (well within claim_ttl).
  void renew_claims();
  /// `call`'s dispatch carried the actor's state to `worker`: the activation lives there now.
  void activated(Job& call, const WorkerRecord& worker);
  /// A result of `call` from `worker`, verified by the broker: frames are [worker id][header]
  /// [returned outputs...][kept outputs...]. ACTOR_NOT_ACTIVE reactivates the actor (at most twice);
  /// kept outputs are written through (at most `max_resident_bytes` for the tenant) before the
  /// client is answered.
  void on_result(const WorkerRecord& worker, Job& call, core::Frames& frames, std::uint64_t max_resident_bytes);
  /// The call is ending: out of its actor's queue, and its turn (if it holds it) given back.
  void ended(Job& call);
  /// The worker's copy of the actor may be ahead of the store (a write that will not happen): it
  /// is dropped, and the next call activates the actor from the store.
  void drop_activation(const std::string& actor_key);
  /// `call`'s worker is gone, and the actor's activation with it.
  void lost_worker(const Job& call, const std::string& worker);
  /// Deactivates and forgets actors without calls for actor_idle_ms.
  void deactivate_idle(Clock::time_point now);
  /// The store's connection came back: it may be another Redis (a fail-over) or an older state of
  /// it, so no activation is trusted without reading the store again. Each is dropped, and the
  /// actor's next call reactivates it from the store (and finds any loss there). Calls whose writes
  /// were unconfirmed when the connection went are settled from what the store holds.
  void store_reconnected();
  /// Asks the store again about the writes still unconfirmed (their last read went unanswered: a
  /// Redis still loading its data answers with an error). Call regularly (the broker's heartbeat).
  void retry_unverified();
  /// The store lost data (Redis came back empty, or was flushed): every actor this broker knows to
  /// have had state is marked lost in the store (its calls get DATA_LOSS until it is reset), and its
  /// activation, which Redis no longer backs, is dropped. Returns how many were marked.
  std::size_t store_lost();
  /// Resets the actor in the store (ActorStateStore::reset) and drops its activation. Refused
  /// (ABORTED) while this broker has calls for it, which would run on the state being dropped;
  /// UNAVAILABLE if the store is unreachable. `done` is called only when OK is returned.
  Status reset(const std::string& tenant, const std::string& actor_id, ActorStateStore::ResetHandler done);

  const ActorEntry* find(const std::string& actor_key) { return actors_.find(actor_key); }
  std::size_t size() const { return actors_.size(); }

 private:
  void claim(Job& call, Clock::time_point now);
  void on_claimed(std::uint64_t key, const std::string& token, const ActorStateStore::Claim& claim);
  /// `call` holds its actor's claim; the store holds `version` (and the loss mark `lost_version`):
  /// to the worker holding the activation, or the actor is loaded.
  void claimed(Job& call, std::uint64_t version, std::uint64_t lost_version);
  /// Gives the actor's claim back (no call of this broker needs it, or another broker asked).
  void release_claim(ActorEntry& actor);
  std::string new_claim_token() { return options_.owner + ":" + std::to_string(++claims_made_); }
  std::uint64_t claims_made_ = 0;
  void on_loaded(std::uint64_t key, bool reachable, ActorState state);
  /// DATA_LOSS if the store holds less than this broker or the client was told of (`lost_version`
  /// is the store's mark). True when `call` was failed so.
  bool failed_lost(Job& call, std::uint64_t stored, std::uint64_t lost_version);
  void on_written(std::uint64_t key, const std::shared_ptr<core::Frames>& result, std::uint64_t max_resident_bytes,
                  const ActorStateStore::WriteResult& written);
  /// A call whose write's fate is unknown ("unconfirmed") is answered from what the store holds
  /// once it is reachable again: its new version there, the result; the version it started from,
  /// it runs again (nothing of it was kept, and its client has no answer yet).
  struct Unverified {
    std::uint64_t call = 0;
    std::uint64_t version = 0;  ///< the version its write would have made
    std::shared_ptr<core::Frames> result;
  };
  void verify(Unverified unverified);
  void deactivate(ActorEntry& actor);
  /// DATA_LOSS for `call`: its actor's state had reached `lost`, and the store holds `stored`
  /// (logged if `newly_found`, rather than read from the store's mark).
  void fail_lost(Job& call, std::uint64_t lost, std::uint64_t stored, bool newly_found);

  Options options_;
  JobTable& jobs_;
  WorkerRegistry& workers_;
  ActorStateStore& store_;
  Host& host_;
  ActorTable actors_;
  static constexpr std::chrono::milliseconds kYieldToOtherBroker{50};
  std::multimap<Clock::time_point, std::uint64_t> claim_retries_;  ///< calls waiting to claim again
  std::vector<Unverified> unverified_;  ///< not being read: read at the reconnect, or the retry
  ThrottledLog lost_log_;
};

}  // namespace bridge::broker
