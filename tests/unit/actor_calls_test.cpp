// ActorCalls: turns, activation, write-through and their failures, against an in-memory state store
// that answers when the test says (as Redis would, later) and a recording Host: no socket, no Redis.
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "bridge/broker/actor_calls.hpp"
#include "deferred_replies.hpp"

namespace bridge::broker {
namespace {

using std::chrono::milliseconds;

// One fleet's actors' state, as the Lua scripts keep it: a version and named tensors per actor; a
// write applies only on top of the version it started from; a store holding an older version than
// a write started from lost state, and marks it (`lost`) until a reset.
class MemoryActorStore final : public ActorStateStore {
 public:
  struct Stored {
    std::uint64_t version = 0;
    std::vector<Tensor> tensors;
    std::string worker;
    std::uint64_t lost = 0;
  };
  std::map<std::string, Stored> actors;  // by "<tenant>/<actor id>"
  bool reachable = true;
  std::string refuse_write;  // "max_resident_bytes": refuse the next writes so
  // The connection goes before the next write is confirmed: "landed" (the write was applied) or
  // "lost" (it was not); the write is answered "unconfirmed" either way.
  std::string unconfirm_next;
  int unanswered_loads = 0;  // the next loads get no usable answer (as from a Redis still loading)
  int loads = 0, writes = 0;

  bool load(const std::string& tenant, const std::string& actor_id, bool, LoadHandler done) override {
    if (!reachable) return false;
    ++loads;
    replies_.push([this, key = tenant + "/" + actor_id, done = std::move(done)] {
      if (unanswered_loads > 0 && unanswered_loads--) return done(false, ActorState{});
      const Stored& s = actors[key];
      ActorState state;
      state.found = s.version > 0;
      state.version = s.version;
      state.worker = s.worker;
      state.tensors = s.tensors;
      state.lost_version = s.lost;
      done(true, state);
    });
    return true;
  }
  bool write(const std::string& tenant, const std::string& actor_id, std::uint64_t expected_version,
             const std::string& worker, const std::vector<Tensor>& tensors, std::uint64_t, WriteHandler done) override {
    if (!reachable) return false;
    ++writes;
    replies_.push([=, this, key = tenant + "/" + actor_id, done = std::move(done)] {
      Stored& s = actors[key];
      WriteResult r;
      r.reachable = true;
      if (!refuse_write.empty()) {
        r.refusal = refuse_write;
        r.resident_bytes = 4096;
      } else if (s.lost > 0 || s.version < expected_version) {
        s.lost = std::max(s.lost, expected_version);
        r.refusal = "lost";
        r.version = s.lost;
        r.stored_version = s.version;
      } else if (s.version != expected_version) {
        r.refusal = "version";
        r.version = s.version;
      } else if (!unconfirm_next.empty()) {
        r.refusal = "unconfirmed";
        r.version = s.version + 1;
        if (std::exchange(unconfirm_next, "") == "landed") {
          ++s.version;
          s.tensors = tensors;
        }
      } else {
        r.written = true;
        r.version = ++s.version;
        s.tensors = tensors;
        s.worker = worker;
      }
      done(r);
    });
    return true;
  }
  void set_worker(const std::string& tenant, const std::string& actor_id, const std::string& worker) override {
    actors[tenant + "/" + actor_id].worker = worker;
  }
  void mark_lost(const std::string& tenant, const std::string& actor_id, std::uint64_t version) override {
    Stored& s = actors[tenant + "/" + actor_id];
    if (s.version < version) s.lost = std::max(s.lost, version);
  }
  bool reset(const std::string& tenant, const std::string& actor_id, ResetHandler done) override {
    if (!reachable) return false;
    replies_.push([this, key = tenant + "/" + actor_id, done = std::move(done)] {
      if (!turns[key].empty()) return done(true, kResetRefusedBusy);
      Stored& s = actors[key];
      s = Stored{.version = std::max(s.version, s.lost) + 1};
      done(true, s.version);
    });
    return true;
  }
  bool settle(const std::string& tenant, const std::string& actor_id, std::uint64_t version,
              SettleHandler done) override {
    if (!reachable) return false;
    ++loads;
    replies_.push([this, version, key = tenant + "/" + actor_id, done = std::move(done)] {
      if (unanswered_loads > 0 && unanswered_loads--) return done(Settled{});
      const Stored& s = actors[key];
      done({.reachable = true,
            .landed = s.lost == 0 && s.version >= version,
            .version = s.version,
            .lost_version = s.lost});
    });
    return true;
  }
  // Claims: answered at once unless deferred_claims (then like every other reply).
  std::map<std::string, std::string> turns;  // actor key -> token holding its turn
  std::set<std::string> wanted;              // actors whose turn another token asked for
  bool deferred_claims = false;
  int claims = 0;
  bool claim(const std::string& tenant, const std::string& actor_id, const std::string& token,
             std::chrono::milliseconds, ClaimHandler done) override {
    if (!reachable) return false;
    ++claims;
    auto reply = [this, key = tenant + "/" + actor_id, token, done = std::move(done)] {
      std::string& holder = turns[key];
      const bool owned = holder.empty() || holder == token;
      if (owned) holder = token;
      if (!owned) wanted.insert(key);
      const Stored& s = actors[key];
      done({.reachable = true, .owned = owned, .version = s.version, .lost_version = s.lost});
    };
    if (deferred_claims) {
      replies_.push(std::move(reply));
    } else {
      reply();
    }
    return true;
  }
  void unclaim(const std::string& tenant, const std::string& actor_id, const std::string& token,
               UnclaimHandler done) override {
    const std::string key = tenant + "/" + actor_id;
    if (turns[key] == token) turns[key].clear();
    const bool was_wanted = wanted.erase(key) > 0;
    if (done) done(was_wanted);
  }
  void renew(const std::string&, const std::string&, const std::string&, std::chrono::milliseconds,
             RenewHandler) override {}
  bool answer() { return replies_.answer(); }

 private:
  DeferredReplies replies_;
};

// The broker's side, as ActorCalls sees it: every call it is asked to admit, route, answer or end.
struct Rig final : ActorCalls::Host {
  JobTable jobs;
  WorkerRegistry workers;
  MemoryActorStore store;
  ActorCalls calls{
      {.enforce_quotas = true, .retry_after_ms = 500, .actor_idle_ms = 1000, .store_name = "the test store"},
      jobs,
      workers,
      store,
      *this};
  TenantQuota quota;

  std::vector<std::uint64_t> admitted, routed, finished;
  std::map<std::uint64_t, Status> failed;
  std::vector<std::string> deactivated;  // "<worker> <actor key>"

  Rig() {
    quota.max_inflight_jobs = 3;
    quota.max_inflight_bytes = 1000;
    add_worker("w1");
    add_worker("w2");
  }

  void admit(Job& call) override {
    admitted.push_back(call.key);
    calls.start(call);  // as Admission does once the quota is taken
  }
  void route(Job& call) override { routed.push_back(call.key); }
  void finish(Job& call, core::Frames) override {
    finished.push_back(call.key);
    end(call);
  }
  void fail(Job& call, const Status& status, std::uint32_t) override {
    failed[call.key] = status;
    if (call.held_outside()) return jobs.set_state(call, JobState::kCancelling);
    end(call);
  }
  void release(Job& call) override { end(call); }
  void send_deactivate(const std::string& worker, const std::string& actor_key) override {
    deactivated.push_back(worker + " " + actor_key);
  }

  void end(Job& call) {
    calls.ended(call);
    jobs.erase(call);
  }
  void add_worker(const std::string& id, std::uint64_t incarnation = 1) {
    WorkerRecord w;
    w.id = id;
    w.incarnation = incarnation;
    w.slots = 4;
    std::vector<Job*> orphaned;
    workers.upsert(std::move(w), orphaned);
  }
  Job& arrive(std::uint64_t key, const std::string& actor_id = "m", std::uint64_t bytes = 10) {
    auto job = std::make_unique<Job>();
    job->key = key;
    job->client = "c";
    job->client_job_id = key;
    job->tenant = "t";
    job->actor = "t/" + actor_id;
    job->received = Clock::now();
    job->deadline = job->received + milliseconds(10000);
    job->payload_bytes = bytes;
    Job& added = *jobs.add(std::move(job));
    calls.arrived(added, actor_id, &quota);
    return added;
  }
  // The Dispatcher's part: the routed call is sent to `worker` (its pinned one, if any).
  void dispatch(Job& call, const std::string& worker) {
    jobs.set_state(call, JobState::kRunning);
    call.worker = worker;
    if (call.activate) calls.activated(call, *workers.find(worker));
  }
  // A call to an idle actor, loaded from the store and running on `worker`.
  Job& running(std::uint64_t key, const std::string& worker) {
    Job& call = arrive(key);
    calls.pump();
    EXPECT_TRUE(store.answer()) << "no load of the actor's state";
    dispatch(call, worker);
    return call;
  }
  // The worker answers: [worker id][header][returned...][kept...]; the broker has freed the credit.
  void result(Job& call, wire::StatusCode status, std::vector<Tensor> kept = {}) {
    const std::string worker = std::exchange(call.worker, "");
    flatbuffers::FlatBufferBuilder fbb(256);
    std::vector<flatbuffers::Offset<wire::TensorDesc>> descs;
    for (const Tensor& t : kept) descs.push_back(core::add_tensor_desc(fbb, t));
    auto kept_vector = fbb.CreateVector(descs);
    auto message = fbb.CreateString(status == wire::StatusCode::OK ? "" : "no activation");
    wire::JobResultBuilder b(fbb);
    b.add_status(status);
    b.add_message(message);
    b.add_kept(kept_vector);
    auto body = b.Finish();
    core::Frames frames;
    frames.emplace_back(worker);
    frames.push_back(core::finish_envelope(fbb, wire::Body::JobResult, body.Union()));
    for (const Tensor& t : kept) frames.push_back(core::tensor_to_frame(t));
    calls.on_result(*workers.find(worker), call, frames, 1 << 20);
  }
};

Tensor weights(float value) { return Tensor::from<float>(std::vector<float>{value, value}, {2}, "w"); }

TEST(ActorCalls, CallsTakeTurnsInArrivalOrderAndTheSecondRunsWhereTheFirstActivatedTheActor) {
  Rig rig;
  Job& first = rig.arrive(1);
  rig.arrive(2);
  rig.arrive(3);
  EXPECT_TRUE(rig.admitted.empty()) << "turns are taken in pump(), not while a call arrives";
  rig.calls.pump();
  EXPECT_EQ(rig.admitted, std::vector<std::uint64_t>{1}) << "one call at a time";
  EXPECT_EQ(first.state, JobState::kLoadingActor) << "a new actor is activated from the store";
  ASSERT_TRUE(rig.store.answer());
  EXPECT_EQ(rig.routed, std::vector<std::uint64_t>{1});
  EXPECT_TRUE(first.activate);
  EXPECT_TRUE(first.pinned_worker.empty());
  rig.dispatch(first, "w1");
  EXPECT_FALSE(first.activate);
  EXPECT_EQ(rig.store.actors["t/m"].worker, "w1");

  rig.result(first, wire::StatusCode::OK, {weights(1)});
  EXPECT_TRUE(rig.finished.empty()) << "answered before its state was written through";
  EXPECT_EQ(first.state, JobState::kWritingThrough);
  ASSERT_TRUE(rig.store.answer());
  EXPECT_EQ(rig.finished, std::vector<std::uint64_t>{1});
  EXPECT_EQ(rig.store.actors["t/m"].version, 1u);

  rig.calls.pump();
  EXPECT_EQ(rig.admitted, (std::vector<std::uint64_t>{1, 2}));
  Job& second = *rig.jobs.find(2);
  EXPECT_EQ(rig.routed, (std::vector<std::uint64_t>{1, 2})) << "routed at once: no second load";
  EXPECT_EQ(second.pinned_worker, "w1");
  EXPECT_EQ(second.actor_version, 1u);
  EXPECT_EQ(rig.store.loads, 1);
}

TEST(ActorCalls, CallsWaitingForTheirTurnsAreBoundedByTheTenantsQuota) {
  Rig rig;
  rig.quota.max_inflight_jobs = 2;
  rig.arrive(1);
  rig.calls.pump();  // 1 holds the turn
  rig.arrive(2);
  rig.arrive(3);
  rig.arrive(4);
  ASSERT_EQ(rig.failed.count(4), 1u);
  EXPECT_EQ(rig.failed[4].code(), StatusCode::kResourceExhausted);
  EXPECT_NE(rig.failed[4].message().find("2 actor calls waiting"), std::string::npos) << rig.failed[4].message();
  // Bytes too: a call whose payload would pass max_inflight_bytes waits nowhere.
  rig.quota.max_inflight_jobs = 100;
  rig.arrive(5, "m", 990);
  ASSERT_EQ(rig.failed.count(5), 1u);
  EXPECT_NE(rig.failed[5].message().find("max_inflight_bytes of 1000"), std::string::npos) << rig.failed[5].message();
  // A call to another, idle actor does not wait, so it is not counted against the waiting bound.
  rig.quota.max_inflight_jobs = 2;
  rig.arrive(6, "other");
  EXPECT_EQ(rig.failed.count(6), 0u);
}

TEST(ActorCalls, AStaleWriteIsAbortedAndTheActivationDroppedSoTheNextCallReloads) {
  Rig rig;
  Job& first = rig.running(1, "w1");
  rig.store.actors["t/m"].version = 5;  // another broker served the actor meanwhile
  rig.result(first, wire::StatusCode::OK, {weights(1)});
  rig.store.answer();
  ASSERT_EQ(rig.failed.count(1), 1u);
  EXPECT_EQ(rig.failed[1].code(), StatusCode::kAborted);
  EXPECT_NE(rig.failed[1].message().find("at version 5"), std::string::npos) << rig.failed[1].message();
  EXPECT_EQ(rig.deactivated, std::vector<std::string>{"w1 t/m"});
  EXPECT_EQ(rig.jobs.size(), 0u);

  Job& second = rig.arrive(2);
  rig.calls.pump();
  EXPECT_EQ(second.state, JobState::kLoadingActor) << "not sent to the copy that moved past the store";
  rig.store.answer();
  EXPECT_EQ(second.actor_version, 5u);
}

TEST(ActorCalls, AWriteOverTheResidentBudgetIsRefusedNamingItAndTheStateStays) {
  Rig rig;
  Job& call = rig.running(1, "w1");
  rig.store.refuse_write = "max_resident_bytes";
  rig.result(call, wire::StatusCode::OK, {weights(1)});
  rig.store.answer();
  ASSERT_EQ(rig.failed.count(1), 1u);
  EXPECT_EQ(rig.failed[1].code(), StatusCode::kResourceExhausted);
  EXPECT_NE(rig.failed[1].message().find("max_resident_bytes of 1048576"), std::string::npos)
      << rig.failed[1].message();
  EXPECT_EQ(rig.store.actors["t/m"].version, 0u);
  EXPECT_EQ(rig.deactivated.size(), 1u);
}

TEST(ActorCalls, AWorkerThatLostTheActivationGetsItAgainAtMostTwice) {
  Rig rig;
  Job& call = rig.arrive(1);
  rig.calls.pump();
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(rig.store.answer()) << "reload " << i;
    rig.dispatch(call, "w1");
    rig.result(call, wire::StatusCode::ACTOR_NOT_ACTIVE);
    if (i < 2) {
      EXPECT_EQ(call.state, JobState::kLoadingActor) << "reactivated from the store";
    }
  }
  ASSERT_EQ(rig.failed.count(1), 1u);
  EXPECT_EQ(rig.failed[1].code(), StatusCode::kInternal);
  EXPECT_NE(rig.failed[1].message().find("could not be activated: no activation"), std::string::npos);
}

TEST(ActorCalls, ALostWorkerOrARestartedOneTakesTheActivationWithIt) {
  Rig rig;
  Job& first = rig.running(1, "w1");
  // The worker dies with the call on it: the broker sends it again, and the actor is reloaded.
  rig.calls.lost_worker(first, "w1");
  first.worker.clear();
  rig.calls.start(first);
  EXPECT_EQ(first.state, JobState::kLoadingActor);
  rig.store.answer();
  rig.dispatch(first, "w2");
  rig.result(first, wire::StatusCode::OK);
  EXPECT_EQ(rig.finished, std::vector<std::uint64_t>{1}) << "nothing kept: answered at once";

  rig.add_worker("w2", /*incarnation=*/2);  // restarted as a new process: its activations are gone
  Job& second = rig.arrive(2);
  rig.calls.pump();
  EXPECT_EQ(second.state, JobState::kLoadingActor);
}

TEST(ActorCalls, AnUnreachableStoreIsUnavailableAndACallThatEndedWhileLoadingIsNotRouted) {
  Rig rig;
  rig.store.reachable = false;
  rig.arrive(1);
  rig.calls.pump();
  ASSERT_EQ(rig.failed.count(1), 1u);
  EXPECT_EQ(rig.failed[1].code(), StatusCode::kUnavailable);
  EXPECT_NE(rig.failed[1].message().find("the test store"), std::string::npos);

  rig.store.reachable = true;
  Job& call = rig.arrive(2);
  rig.calls.pump();
  ASSERT_EQ(call.state, JobState::kLoadingActor);
  rig.fail(call, {StatusCode::kDeadlineExceeded, "deadline"}, 0);  // the broker's timer
  rig.store.answer();
  EXPECT_TRUE(rig.routed.empty());
  // Its turn was given back: the next call goes ahead.
  Job& next = rig.arrive(3);
  rig.calls.pump();
  EXPECT_EQ(next.state, JobState::kLoadingActor);
}

TEST(ActorCalls, AWaitingCallThatEndsLeavesTheQueueAndIdleActorsAreDeactivated) {
  Rig rig;
  Job& first = rig.running(1, "w1");
  Job& waiting = rig.arrive(2);
  rig.fail(waiting, {StatusCode::kCancelled, "cancelled"}, 0);
  rig.result(first, wire::StatusCode::OK);
  rig.calls.pump();
  EXPECT_EQ(rig.admitted, std::vector<std::uint64_t>{1}) << "the cancelled call ran";

  rig.calls.deactivate_idle(Clock::now() + milliseconds(500));
  EXPECT_TRUE(rig.deactivated.empty()) << "deactivated before actor_idle_ms";
  rig.calls.deactivate_idle(Clock::now() + milliseconds(1500));
  EXPECT_EQ(rig.deactivated, std::vector<std::string>{"w1 t/m"});
  EXPECT_EQ(rig.calls.size(), 0u);
  EXPECT_EQ(rig.store.actors["t/m"].worker, "");
}

TEST(ActorCalls, ATenantAtItsMaxActorsGivesUpItsLeastRecentlyUsedIdleActorOrIsRefused) {
  Rig rig;
  rig.quota.max_actors = 2;
  rig.quota.max_inflight_jobs = 100;
  for (std::uint64_t key : {1, 2}) {
    Job& call = rig.arrive(key, key == 1 ? "a" : "b");
    rig.calls.pump();
    rig.store.answer();
    rig.dispatch(call, "w1");
    rig.result(call, wire::StatusCode::OK);
  }
  rig.arrive(3, "a");  // "a" is used again: "b" is now the least recently used
  rig.calls.pump();
  Job& third = *rig.jobs.find(3);
  rig.dispatch(third, "w1");
  rig.result(third, wire::StatusCode::OK);

  rig.arrive(4, "c");
  EXPECT_EQ(rig.failed.count(4), 0u);
  EXPECT_EQ(rig.deactivated, std::vector<std::string>{"w1 t/b"});
  EXPECT_EQ(rig.calls.find("t/b"), nullptr);
  EXPECT_NE(rig.calls.find("t/a"), nullptr);
  EXPECT_EQ(rig.calls.size(), 2u);

  // Both actors now have calls in flight: a third actor has no room.
  rig.arrive(5, "a");
  rig.arrive(6, "d");
  ASSERT_EQ(rig.failed.count(6), 1u);
  EXPECT_EQ(rig.failed[6].code(), StatusCode::kResourceExhausted);
  EXPECT_NE(rig.failed[6].message().find("its max_actors is 2"), std::string::npos) << rig.failed[6].message();
}

// Redis came back without the actor (restart without persistence): the call's client had seen
// version 3, the store holds nothing. Not a new actor: DATA_LOSS, naming the actor and version.
TEST(ActorCalls, AStoreHoldingLessThanTheClientSawIsDataLossAndMarksTheActorLostForEveryone) {
  Rig rig;
  Job& call = rig.arrive(1);
  call.actor_version_seen = 3;
  rig.calls.pump();  // found by the claim, which reads the version
  ASSERT_EQ(rig.failed.count(1), 1u);
  EXPECT_EQ(rig.failed[1].code(), StatusCode::kDataLoss);
  EXPECT_NE(rig.failed[1].message().find("actor t/m lost its state: version 3 was acknowledged"), std::string::npos)
      << rig.failed[1].message();
  EXPECT_NE(rig.failed[1].message().find("holds none of it"), std::string::npos) << rig.failed[1].message();
  EXPECT_TRUE(rig.routed.empty()) << "never run on the empty state";
  EXPECT_EQ(rig.store.actors["t/m"].lost, 3u) << "marked, for calls from clients that saw nothing";

  // A call from a client that never saw the actor is refused too, until the actor is reset.
  rig.arrive(2);
  rig.calls.pump();
  EXPECT_EQ(rig.failed[2].code(), StatusCode::kDataLoss);

  ASSERT_TRUE(rig.calls
                  .reset("t", "m",
                         [](bool reachable, std::uint64_t version) {
                           EXPECT_TRUE(reachable);
                           EXPECT_EQ(version, 4u) << "past the version that was lost";
                         })
                  .is_ok());
  ASSERT_TRUE(rig.store.answer());
  Job& after = rig.arrive(3);
  after.actor_version_seen = 3;
  rig.calls.pump();
  ASSERT_TRUE(rig.store.answer());
  EXPECT_EQ(rig.routed, std::vector<std::uint64_t>{3}) << "runs again once reset";
  EXPECT_EQ(after.actor_version, 4u);
}

// This broker activated the actor at version 1; Redis is wiped while the next call runs on that
// activation. Its write finds Redis behind it: DATA_LOSS, and the activation is dropped.
TEST(ActorCalls, AWriteThatFindsRedisBehindItsStartingVersionIsDataLossAndDropsTheActivation) {
  Rig rig;
  Job& first = rig.running(1, "w1");
  rig.result(first, wire::StatusCode::OK, {weights(1)});
  ASSERT_TRUE(rig.store.answer());
  ASSERT_EQ(rig.finished, std::vector<std::uint64_t>{1});

  rig.calls.pump();
  Job& second = rig.arrive(2);
  rig.calls.pump();
  ASSERT_EQ(second.pinned_worker, "w1") << "the activation is used: the claim found Redis at its version";
  rig.store.actors.clear();  // FLUSHALL
  rig.dispatch(second, "w1");
  rig.result(second, wire::StatusCode::OK, {weights(2)});
  ASSERT_TRUE(rig.store.answer());
  ASSERT_EQ(rig.failed.count(2), 1u);
  EXPECT_EQ(rig.failed[2].code(), StatusCode::kDataLoss);
  EXPECT_NE(rig.failed[2].message().find("version 1 was acknowledged"), std::string::npos) << rig.failed[2].message();
  EXPECT_EQ(rig.deactivated, std::vector<std::string>{"w1 t/m"});
  EXPECT_EQ(rig.store.actors["t/m"].version, 0u) << "nothing rolled forward from the activation";
}

// The store lost everything (StoreEpoch): every actor this broker knows with state is marked lost
// and deactivated; one that never saved state is left alone. A reset waits for the actor's calls.
TEST(ActorCalls, AStoreThatLostItsDataMarksKnownActorsLostAndAResetWaitsForTheirCalls) {
  Rig rig;
  Job& first = rig.running(1, "w1");
  rig.result(first, wire::StatusCode::OK, {weights(1)});
  ASSERT_TRUE(rig.store.answer());
  Job& other = rig.arrive(2, "fresh");
  rig.calls.pump();
  ASSERT_TRUE(rig.store.answer());
  rig.dispatch(other, "w2");

  rig.store.actors.clear();
  EXPECT_EQ(rig.calls.store_lost(), 1u);
  EXPECT_EQ(rig.store.actors["t/m"].lost, 1u);
  EXPECT_EQ(rig.store.actors["t/fresh"].lost, 0u);
  EXPECT_EQ(rig.deactivated, std::vector<std::string>{"w1 t/m"});

  const Status busy = rig.calls.reset("t", "fresh", [](bool, std::uint64_t) { ADD_FAILURE() << "reset ran"; });
  EXPECT_EQ(busy.code(), StatusCode::kAborted);
  EXPECT_NE(busy.message().find("has 1 calls in flight"), std::string::npos) << busy.message();
  rig.store.reachable = false;
  EXPECT_EQ(rig.calls.reset("t", "m", [](bool, std::uint64_t) {}).code(), StatusCode::kUnavailable);
}

// The connection went between the commit and its confirmation: the call keeps its turn and no
// answer until the store is read. If the write landed, the result goes out; if not, the call runs
// again from the version it started from. Either way its effect is in the store exactly once.
// The store may be back already when the write is found unconfirmed (a WAIT that was backing off
// is given up only on the next connection): then it is read at once, not at a reconnect to come.
TEST(ActorCalls, ACallWhoseWriteWasUnconfirmedIsSettledFromTheStoreOnceItIsBack) {
  for (const bool back_first : {false, true}) {
    for (const std::string fate : {"landed", "lost"}) {
      const std::string what = fate + (back_first ? ", the store back first" : ", the store back later");
      Rig rig;
      Job& call = rig.running(1, "w1");
      rig.store.unconfirm_next = fate;
      rig.result(call, wire::StatusCode::OK, {weights(1)});
      rig.store.reachable = back_first;
      ASSERT_TRUE(rig.store.answer());
      EXPECT_TRUE(rig.finished.empty() && rig.failed.empty()) << what << ": answered before the store was read";
      EXPECT_TRUE(call.write_pending) << what << ": the turn is held";
      Job& next = rig.arrive(2);
      rig.calls.pump();
      EXPECT_EQ(next.state, JobState::kWaitingTurn) << what;

      if (!back_first) {
        rig.store.reachable = true;
        rig.calls.store_reconnected();
      }
      ASSERT_TRUE(rig.store.answer()) << what << ": the store is read again";
      if (fate == "landed") {
        EXPECT_EQ(rig.finished, std::vector<std::uint64_t>{1}) << what;
        EXPECT_EQ(rig.store.actors["t/m"].version, 1u) << what;
      } else {
        EXPECT_TRUE(rig.finished.empty()) << what;
        EXPECT_EQ(call.state, JobState::kLoadingActor) << what << ": runs again from the store";
        ASSERT_TRUE(rig.store.answer());
        rig.dispatch(call, "w2");
        rig.result(call, wire::StatusCode::OK, {weights(1)});
        ASSERT_TRUE(rig.store.answer());
        EXPECT_EQ(rig.finished, std::vector<std::uint64_t>{1}) << what;
        EXPECT_EQ(rig.store.actors["t/m"].version, 1u) << what << ": applied once";
      }
      EXPECT_TRUE(rig.failed.empty()) << what;
    }
  }
}

// A read of an unconfirmed write that gets no usable answer (a Redis still loading its data) is
// asked again at the next retry, with no reconnect needed: the actor is not held for good.
TEST(ActorCalls, AnUnansweredReadOfAnUnconfirmedWriteIsAskedAgain) {
  Rig rig;
  Job& call = rig.running(1, "w1");
  rig.store.unconfirm_next = "landed";
  rig.result(call, wire::StatusCode::OK, {weights(1)});
  rig.store.unanswered_loads = 1;
  ASSERT_TRUE(rig.store.answer());  // the write: unconfirmed; the store is read at once
  ASSERT_TRUE(rig.store.answer());  // that read: no usable answer
  EXPECT_FALSE(rig.store.answer()) << "nothing asked until the retry";
  EXPECT_TRUE(call.write_pending);
  rig.calls.retry_unverified();
  ASSERT_TRUE(rig.store.answer());
  EXPECT_EQ(rig.finished, std::vector<std::uint64_t>{1});
  rig.calls.retry_unverified();
  EXPECT_FALSE(rig.store.answer()) << "settled: not read again";
}

// Another broker's call holds the actor (its claim in the store): this broker's call waits, asking
// again with backoff, and runs once the turn is given back. The broker that held the actor then
// lets the one that waited in before it claims it again.
TEST(ActorCalls, ACallWaitsWhileAnotherBrokersCallHoldsTheActorAndTheyTakeTurns) {
  Rig rig;
  rig.store.turns["t/m"] = "other-broker:7";
  Job& call = rig.arrive(1);
  rig.calls.pump();
  EXPECT_EQ(call.state, JobState::kLoadingActor);
  EXPECT_TRUE(rig.routed.empty()) << "not while another broker's call holds the actor";
  EXPECT_EQ(rig.store.claims, 1);
  rig.calls.tick(Clock::now() + milliseconds(100));
  EXPECT_EQ(rig.store.claims, 2) << "asked again after its backoff";
  EXPECT_TRUE(rig.routed.empty());
  rig.store.turns["t/m"].clear();  // the other broker's call ended
  rig.calls.tick(Clock::now() + milliseconds(200));
  ASSERT_TRUE(rig.store.answer());  // the load
  EXPECT_EQ(rig.routed, std::vector<std::uint64_t>{1});
  rig.dispatch(call, "w1");
  rig.result(call, wire::StatusCode::OK);
  EXPECT_EQ(rig.finished, std::vector<std::uint64_t>{1});
  EXPECT_TRUE(rig.store.turns["t/m"].empty()) << "given back when the call ended";

  // This broker's next call: the other broker asked while this one held the actor, so it waits
  // a moment for the other to take its turn.
  const int claims = rig.store.claims;
  Job& next = rig.arrive(2);
  rig.calls.pump();
  EXPECT_EQ(rig.store.claims, claims) << "not claimed at once after a broker that waited";
  EXPECT_EQ(next.state, JobState::kLoadingActor);
  rig.calls.tick(Clock::now() + milliseconds(100));
  EXPECT_EQ(rig.store.claims, claims + 1);
  EXPECT_EQ(rig.routed, (std::vector<std::uint64_t>{1, 2}));
  EXPECT_EQ(next.pinned_worker, "w1");
}

// Another broker served the actor since this one activated it: the claim reads the newer version,
// and the stale activation is dropped; the call runs on the state from the store.
TEST(ActorCalls, AClaimThatFindsANewerVersionDropsTheStaleActivation) {
  Rig rig;
  Job& first = rig.running(1, "w1");
  rig.result(first, wire::StatusCode::OK, {weights(1)});
  ASSERT_TRUE(rig.store.answer());
  rig.calls.pump();
  rig.store.actors["t/m"].version = 2;  // a call through another broker
  rig.store.actors["t/m"].tensors = {weights(2)};
  Job& second = rig.arrive(2);
  rig.calls.pump();
  EXPECT_EQ(rig.deactivated, std::vector<std::string>{"w1 t/m"});
  ASSERT_TRUE(rig.store.answer());  // the load
  EXPECT_TRUE(second.activate);
  EXPECT_EQ(second.actor_version, 2u);
  EXPECT_TRUE(second.pinned_worker.empty());
}

// Calls queued on one actor: the claim passes from each to the next without asking the store again
// (no other broker can have run the actor meanwhile), and is given back once none waits.
TEST(ActorCalls, TheClaimPassesToTheNextQueuedCallAndIsGivenBackWhenNoneWaits) {
  Rig rig;
  Job& first = rig.running(1, "w1");
  Job& second = rig.arrive(2);
  EXPECT_EQ(rig.store.claims, 1);
  rig.result(first, wire::StatusCode::OK);
  EXPECT_FALSE(rig.store.turns["t/m"].empty()) << "kept for the call waiting";
  rig.calls.pump();
  EXPECT_EQ(rig.routed, (std::vector<std::uint64_t>{1, 2}));
  EXPECT_EQ(rig.store.claims, 1) << "the second call did not ask the store";
  rig.dispatch(second, "w1");
  rig.result(second, wire::StatusCode::OK);
  EXPECT_TRUE(rig.store.turns["t/m"].empty()) << "given back: no call waits";
}

// A call whose deadline passed while its claim was asked: the claim, granted later, is given back.
TEST(ActorCalls, AClaimGrantedAfterItsCallEndedIsGivenBack) {
  Rig rig;
  rig.store.deferred_claims = true;
  Job& call = rig.arrive(1);
  rig.calls.pump();
  rig.fail(call, Status(StatusCode::kDeadlineExceeded, "deadline"), 0);
  ASSERT_TRUE(rig.store.answer());  // the claim
  EXPECT_TRUE(rig.store.turns["t/m"].empty());
  EXPECT_TRUE(rig.routed.empty());
}

}  // namespace
}  // namespace bridge::broker
