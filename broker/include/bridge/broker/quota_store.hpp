#pragma once
/// @file QuotaStore: global per-tenant admission in Redis, shared by every broker of a fleet.

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

#include "bridge/broker/redis_connection.hpp"

namespace bridge::broker {

/// Counts each tenant's in-flight jobs in a Redis hash `<prefix>inflight:<tenant>` with one field per
/// broker, and admits a job only if the sum over live brokers stays within the tenant's limit. The
/// check-and-increment is one Lua script, so brokers sharing one Redis enforce one limit. A broker that
/// dies without releasing its jobs stops counting once its liveness key `<prefix>broker:<id>` expires
/// (the script drops fields of brokers whose key is gone). Loop-thread only, like RedisConnection.
class QuotaStore {
 public:
  struct Decision {
    bool reachable = false;   ///< false: no usable answer (connection lost, or `error`)
    std::string error;        ///< Redis's error reply, if it sent one
    bool admitted = false;
    std::int64_t in_use = 0;  ///< the tenant's jobs in flight fleet-wide, after this decision
  };
  using DecisionHandler = std::function<void(Decision)>;

  QuotaStore(RedisConnection& redis, std::string prefix, std::string broker_id);

  /// Asks for one in-flight job of `tenant` under `limit`; `done` is called once, later. Also refreshes
  /// this broker's liveness key to `ttl`, so that its holdings are never taken for a dead broker's.
  /// Returns false (and never calls `done`) when Redis is not connected.
  bool acquire(const std::string& tenant, std::uint32_t limit, std::chrono::milliseconds ttl, DecisionHandler done);
  /// Gives one back. Best effort: if Redis is down, the count is dropped with the broker's key.
  void release(const std::string& tenant);
  /// Refreshes this broker's liveness key; call well within `ttl`.
  void keep_alive(std::chrono::milliseconds ttl);

  const std::string& broker_id() const { return broker_id_; }

 private:
  RedisConnection& redis_;
  std::string prefix_;
  std::string broker_id_;
};

}  // namespace bridge::broker
