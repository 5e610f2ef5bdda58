#pragma once
/// @file ActorStore: actors' state (resident tensors with a version) and placement in Redis.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "bridge/broker/redis_connection.hpp"
#include "bridge/broker/replica_wait.hpp"
#include "bridge/tensor.hpp"

namespace bridge::broker {

/// An actor's state as Redis holds it.
struct ActorState {
  bool found = false;  ///< false: never written (a new actor, version 0, no tensors)
  std::uint64_t version = 0;
  std::string worker;  ///< where its broker last placed it; empty: not active
  std::int64_t updated_unix_ms = 0;
  std::vector<Tensor> tensors;  ///< named; bytes only when loaded with data
  /// Non-zero: state up to this version was acknowledged and is gone (Redis lost data); calls are
  /// refused DATA_LOSS until the actor is reset.
  std::uint64_t lost_version = 0;
};

/// What actor calls ask of a store of actors' state, fleet-wide: ActorStore in Redis, or an
/// in-memory one in unit tests, so that actor calls are tested without a socket.
class ActorStateStore {
 public:
  struct WriteResult {
    bool reachable = false;  ///< false: no usable answer (connection lost or `error`)
    std::string error;
    bool written = false;
    /// When not written: "version" (a newer state exists), "lost" (the state the call started
    /// from is gone: Redis holds an older one, or the actor is marked lost), "max_resident_bytes",
    /// or "unconfirmed": the commit was sent, but the connection went before Redis answered it or
    /// before the replicas confirmed it, so whether the new state (`version`) survives is unknown
    /// until the store is read again.
    std::string refusal;
    /// Written: the new version; refused for "version": the current one; for "lost": the version lost.
    std::uint64_t version = 0;
    std::uint64_t stored_version = 0;  ///< refused for "lost": the version Redis holds
    std::uint64_t resident_bytes = 0;  ///< refused for max_resident_bytes: what the tenant would hold
  };
  using LoadHandler = std::function<void(bool reachable, ActorState state)>;
  using WriteHandler = std::function<void(WriteResult)>;
  /// `version`: the actor's version after the reset (0 if it had no record: nothing to reset), or
  /// kResetRefusedBusy: a call (through any broker) holds the actor's turn, and nothing was reset.
  using ResetHandler = std::function<void(bool reachable, std::uint64_t version)>;
  static constexpr std::uint64_t kResetRefusedBusy = ~std::uint64_t{0};
  /// What settle() found. `reachable` false: no usable answer, or it landed but the replicas'
  /// confirmation went with the connection again (ask again).
  struct Settled {
    bool reachable = false;
    bool landed = false;             ///< the store holds the version asked about (or a newer one), unmarked
    std::uint64_t version = 0;       ///< the version the store holds
    std::uint64_t lost_version = 0;  ///< its loss mark (0: none)
  };
  using SettleHandler = std::function<void(Settled)>;
  /// What claim() found. `owned` false: another call (through any broker) holds the actor's turn.
  struct Claim {
    bool reachable = false;
    bool owned = false;
    std::uint64_t version = 0;       ///< the version the store holds, read in the same step
    std::uint64_t lost_version = 0;  ///< its loss mark (0: none)
  };
  using ClaimHandler = std::function<void(Claim)>;
  /// unclaim(): true when a claim by another token was refused while this one held the turn.
  using UnclaimHandler = std::function<void(bool wanted)>;

  virtual ~ActorStateStore() = default;
  /// Reads an actor's state; with `with_data` false, tensors come without bytes (descriptions only).
  /// `done` is called once, later. False (`done` never called) when the store is unreachable.
  virtual bool load(const std::string& tenant, const std::string& actor_id, bool with_data, LoadHandler done) = 0;
  /// Writes `tensors` (named) as the state after `expected_version` and records `worker`, unless
  /// the stored version is another or the tenant would pass `max_resident_bytes`. Same contract.
  virtual bool write(const std::string& tenant, const std::string& actor_id, std::uint64_t expected_version,
                     const std::string& worker, const std::vector<Tensor>& tensors, std::uint64_t max_resident_bytes,
                     WriteHandler done) = 0;
  /// Records where the actor is active (empty: nowhere). Best effort.
  virtual void set_worker(const std::string& tenant, const std::string& actor_id, const std::string& worker) = 0;
  /// Marks that the actor's state had reached `version`, unless the store holds that version or a
  /// newer one: loads then report it lost, and writes are refused "lost", until reset(). Best effort.
  virtual void mark_lost(const std::string& tenant, const std::string& actor_id, std::uint64_t version) = 0;
  /// Drops the actor's tensors and its loss mark; its version moves past every version it had or
  /// lost, so that no stale writer or activation takes it for its old self. Same contract as load().
  virtual bool reset(const std::string& tenant, const std::string& actor_id, ResetHandler done) = 0;
  /// For a write answered "unconfirmed": whether the store holds `version` now. If it does, it is
  /// answered only once that state is as durable as an acknowledged write (on the replicas a write
  /// waits for), as the connection that wrote it could not say so. Same contract as load().
  virtual bool settle(const std::string& tenant, const std::string& actor_id, std::uint64_t version,
                      SettleHandler done) = 0;
  /// Takes the actor's turn fleet-wide for `token` (one call at a time through every broker) for
  /// `ttl`, unless another token holds it; a token that holds it already keeps it (ttl renewed).
  /// The version and loss mark come with the answer, read in the same step. Same contract as load().
  virtual bool claim(const std::string& tenant, const std::string& actor_id, const std::string& token,
                     std::chrono::milliseconds ttl, ClaimHandler done) = 0;
  /// Gives the turn back if `token` holds it. `done` (may be empty) is called once: with false if
  /// the store could not be asked (at once) or did not answer.
  virtual void unclaim(const std::string& tenant, const std::string& actor_id, const std::string& token,
                       UnclaimHandler done) = 0;
  /// Renews the turn `token` holds for another `ttl` (the broker's heartbeat, while it holds it).
  /// `done(owned, wanted)` if answered: whether `token` still holds it, and whether another token
  /// asked for it meanwhile.
  using RenewHandler = std::function<void(bool owned, bool wanted)>;
  virtual void renew(const std::string& tenant, const std::string& actor_id, const std::string& token,
                     std::chrono::milliseconds ttl, RenewHandler done) = 0;
};

/// One hash per actor, `<prefix>actor:<tenant>/<id>`: `version`, `worker`, `updated_ms`, `lost` (set
/// when acknowledged state was found missing: the version that was lost), and per
/// resident tensor `m:<name>` ("<dtype> <d0>,<d1>,..."), `n:<name>` (its bytes) and `b:<name>` /
/// `c:<name>` (the base name and count of the string keys holding its bytes, in chunks of
/// kChunkBytes: `<base>:0`, `<base>:1`, ...). A counter per tenant, `<prefix>resident:<tenant>`, holds
/// the bytes of all its actors' tensors.
///
/// Bytes move in chunks, at most kChunksInFlight commands of them at a time, so that no Redis
/// command is large: a 1 GiB state neither blocks Redis nor the broker's loop for longer than one
/// chunk, and other commands on the connection (admission) pass between chunks. A write stages its
/// chunks under new names (expiring after kStagedTtlMs, should the broker die), then one small Lua
/// script commits them if the version is still the one the writer started from (a stale writer
/// never overwrites newer state) and the tenant stays within max_resident_bytes, and unlinks the
/// chunks it replaces; a refused commit unlinks the staged ones. Loop-thread only, like RedisConnection.
class ActorStore final : public ActorStateStore {
 public:
  using BytesHandler = std::function<void(bool reachable, std::int64_t bytes)>;

  static constexpr std::size_t kChunkBytes = 1 << 20;
  static constexpr int kChunksInFlight = 4;
  static constexpr int kStagedTtlMs = 600000;
  /// A loss mark on an actor that has no record left (Redis lost it whole) expires after a day: it
  /// tells the actor's callers of the loss meanwhile, and marks a client names at will (it may
  /// claim any version of any of its tenant's actor ids) do not pile up in Redis for ever.
  static constexpr std::int64_t kLostMarkTtlMs = 24 * 3600 * 1000;

  /// With `durability.replicas`, a write is acknowledged only once that many replicas have it
  /// (ReplicaWait); one the connection took with it is answered "unconfirmed".
  ActorStore(RedisConnection& redis, std::string prefix, ReplicaWait::Options durability);

  /// Asks the replicas again when it is due (ReplicaWait::tick). Call regularly (the broker's timers).
  void tick(std::chrono::steady_clock::time_point now);

  /// ActorStateStore, in Redis (false when Redis is not connected).
  bool load(const std::string& tenant, const std::string& actor_id, bool with_data, LoadHandler done) override;
  bool write(const std::string& tenant, const std::string& actor_id, std::uint64_t expected_version,
             const std::string& worker, const std::vector<Tensor>& tensors, std::uint64_t max_resident_bytes,
             WriteHandler done) override;
  void set_worker(const std::string& tenant, const std::string& actor_id, const std::string& worker) override;
  void mark_lost(const std::string& tenant, const std::string& actor_id, std::uint64_t version) override;
  bool reset(const std::string& tenant, const std::string& actor_id, ResetHandler done) override;
  bool settle(const std::string& tenant, const std::string& actor_id, std::uint64_t version,
              SettleHandler done) override;
  /// The turn is the key `<prefix>actorturn:<tenant>/<id>` holding the token, expiring after ttl
  /// (actor_claims.cpp).
  bool claim(const std::string& tenant, const std::string& actor_id, const std::string& token,
             std::chrono::milliseconds ttl, ClaimHandler done) override;
  void unclaim(const std::string& tenant, const std::string& actor_id, const std::string& token,
               UnclaimHandler done) override;
  void renew(const std::string& tenant, const std::string& actor_id, const std::string& token,
             std::chrono::milliseconds ttl, RenewHandler done) override;
  /// Bytes of the tenant's resident tensors.
  bool tenant_bytes(const std::string& tenant, BytesHandler done);

 private:
  struct Write;
  struct Load;
  std::string key(const std::string& tenant, const std::string& actor_id) const;
  std::string turn_key(const std::string& tenant, const std::string& actor_id) const;
  /// Stages the next chunks of `op`, keeping kChunksInFlight in flight; commits after the last.
  void stage(const std::shared_ptr<Write>& op);
  void commit(const std::shared_ptr<Write>& op);
  /// Reads the next chunks of `op` into its tensors; answers after the last.
  void read(const std::shared_ptr<Load>& op);
  RedisConnection& redis_;
  std::string prefix_;
  ReplicaWait replicas_;
  std::uint64_t next_write_ = 0;  ///< with a random start: staged names never collide
};

/// "f32 2,3" for a tensor's dtype and shape, and back (false if malformed).
std::string encode_tensor_meta(DType dtype, const Shape& shape);
bool decode_tensor_meta(std::string_view text, DType& dtype, Shape& shape);

}  // namespace bridge::broker
