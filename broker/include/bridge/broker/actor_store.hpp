#pragma once
/// @file ActorStore: actors' state (resident tensors with a version) and placement in Redis.

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "bridge/broker/redis_connection.hpp"
#include "bridge/tensor.hpp"

namespace bridge::broker {

/// An actor's state as Redis holds it.
struct ActorState {
  bool found = false;              ///< false: never written (a new actor, version 0, no tensors)
  std::uint64_t version = 0;
  std::string worker;              ///< where its broker last placed it; empty: not active
  std::int64_t updated_unix_ms = 0;
  std::vector<Tensor> tensors;     ///< named; bytes only when loaded with data
};

/// What actor calls ask of a store of actors' state, fleet-wide: ActorStore in Redis, or an
/// in-memory one in unit tests, so that actor calls are tested without a socket.
class ActorStateStore {
 public:
  struct WriteResult {
    bool reachable = false;        ///< false: no usable answer (connection lost or `error`)
    std::string error;
    bool written = false;
    std::string refusal;           ///< when not written: "version" or "max_resident_bytes"
    std::uint64_t version = 0;     ///< written: the new version; refused for version: the current one
    std::uint64_t resident_bytes = 0;  ///< refused for max_resident_bytes: what the tenant would hold
  };
  using LoadHandler = std::function<void(bool reachable, ActorState state)>;
  using WriteHandler = std::function<void(WriteResult)>;

  virtual ~ActorStateStore() = default;
  /// Reads an actor's state; with `with_data` false, tensors come without bytes (descriptions only).
  /// `done` is called once, later. False (`done` never called) when the store is unreachable.
  virtual bool load(const std::string& tenant, const std::string& actor_id, bool with_data, LoadHandler done) = 0;
  /// Writes `tensors` (named) as the state after `expected_version` and records `worker`, unless
  /// the stored version is another or the tenant would pass `max_resident_bytes`. Same contract.
  virtual bool write(const std::string& tenant, const std::string& actor_id, std::uint64_t expected_version,
                     const std::string& worker, const std::vector<Tensor>& tensors,
                     std::uint64_t max_resident_bytes, WriteHandler done) = 0;
  /// Records where the actor is active (empty: nowhere). Best effort.
  virtual void set_worker(const std::string& tenant, const std::string& actor_id, const std::string& worker) = 0;
};

/// One hash per actor, `<prefix>actor:<tenant>/<id>`: `version`, `worker`, `updated_ms`, and per
/// resident tensor `m:<name>` ("<dtype> <d0>,<d1>,...") and `t:<name>` (its bytes). A counter per
/// tenant, `<prefix>resident:<tenant>`, holds the bytes of all its actors' tensors. Writes go through
/// one Lua script that checks the version the writer started from, so a stale writer (a broker or
/// activation that missed an update) never overwrites newer state, and that checks the tenant's
/// max_resident_bytes. Loop-thread only, like RedisConnection.
class ActorStore final : public ActorStateStore {
 public:
  using BytesHandler = std::function<void(bool reachable, std::int64_t bytes)>;

  ActorStore(RedisConnection& redis, std::string prefix) : redis_(redis), prefix_(std::move(prefix)) {}

  /// ActorStateStore, in Redis (false when Redis is not connected).
  bool load(const std::string& tenant, const std::string& actor_id, bool with_data, LoadHandler done) override;
  bool write(const std::string& tenant, const std::string& actor_id, std::uint64_t expected_version,
             const std::string& worker, const std::vector<Tensor>& tensors, std::uint64_t max_resident_bytes,
             WriteHandler done) override;
  void set_worker(const std::string& tenant, const std::string& actor_id, const std::string& worker) override;
  /// Bytes of the tenant's resident tensors.
  bool tenant_bytes(const std::string& tenant, BytesHandler done);

 private:
  std::string key(const std::string& tenant, const std::string& actor_id) const;

  RedisConnection& redis_;
  std::string prefix_;
};

/// "f32 2,3" for a tensor's dtype and shape, and back (false if malformed).
std::string encode_tensor_meta(DType dtype, const Shape& shape);
bool decode_tensor_meta(std::string_view text, DType& dtype, Shape& shape);

}  // namespace bridge::broker
