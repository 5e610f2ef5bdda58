#pragma once
/// @file QuotaStore: global per-tenant admission in Redis, shared by every broker of a fleet.

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

#include "bridge/broker/redis_connection.hpp"
#include "bridge/broker/tenants.hpp"

namespace bridge::broker {

/// What QuotaLeases asks of a store of tenant capacity, fleet-wide: QuotaStore in Redis, or an
/// in-memory one in unit tests, so that leasing is tested without a socket.
class LeaseStore {
 public:
  /// Quantities of the three limited things.
  struct Amounts {
    std::uint64_t jobs = 0;
    std::uint64_t bytes = 0;
    std::uint64_t tokens = 0;  ///< rate-limit tokens (jobs that may start)
  };

  struct Decision {
    bool reachable = false;        ///< false: no usable answer (connection lost, or `error`)
    std::string error;             ///< Redis's error reply, if it sent one
    bool admitted = false;
    std::string limit;             ///< when refused: max_inflight_jobs | max_inflight_bytes | rate
    std::int64_t in_use = 0;       ///< when refused for jobs or bytes: the fleet-wide count
    std::uint32_t retry_after_ms = 0;  ///< when refused for rate: when the next token arrives
    Amounts granted;               ///< when admitted: what was added to this broker's lease
  };
  using DecisionHandler = std::function<void(Decision)>;

  virtual ~LeaseStore() = default;
  /// Grows this broker's lease of `tenant`'s capacity: grants at most `want` of each, and nothing
  /// unless at least `need` of each is free; `done` is called once, later. Also refreshes this
  /// broker's liveness key to `ttl`. Returns false (`done` never called) when the store is unreachable.
  virtual bool lease(const std::string& tenant, const TenantQuota& quota, const Amounts& need, const Amounts& want,
                     std::chrono::milliseconds ttl, DecisionHandler done) = 0;
  /// Shrinks this broker's lease (tokens are spent, never given back). Best effort.
  virtual void give_back(const std::string& tenant, std::uint64_t jobs, std::uint64_t bytes) = 0;
  /// Sets this broker's lease outright (after the store may have lost it, or refused give-backs).
  virtual void set_held(const std::string& tenant, std::uint64_t jobs, std::uint64_t bytes) = 0;
};

/// Per tenant, Redis holds the jobs and input bytes each broker has leased (hashes
/// `<prefix>inflight:<tenant>` and `<prefix>inflight_bytes:<tenant>`, one field per broker), and a token
/// bucket `<prefix>rate:<tenant>` for the jobs-per-second limit. One Lua script checks all three limits and
/// takes the job's share atomically, so brokers sharing one Redis enforce one set of limits. A broker that
/// dies without giving back stops counting when its liveness key `<prefix>broker:<id>` expires: scripts
/// drop the fields of brokers whose key is gone. Loop-thread only, like RedisConnection.
class QuotaStore final : public LeaseStore {
 public:
  struct Usage {
    bool known = false;
    std::int64_t jobs = 0;
    std::int64_t bytes = 0;
    double rate_tokens = -1;  ///< -1: no rate limit
  };
  using UsageHandler = std::function<void(Usage)>;

  QuotaStore(RedisConnection& redis, std::string prefix, std::string broker_id);

  /// LeaseStore, in Redis (one Lua script per lease; false when Redis is not connected).
  bool lease(const std::string& tenant, const TenantQuota& quota, const Amounts& need, const Amounts& want,
             std::chrono::milliseconds ttl, DecisionHandler done) override;
  void give_back(const std::string& tenant, std::uint64_t jobs, std::uint64_t bytes) override;
  void set_held(const std::string& tenant, std::uint64_t jobs, std::uint64_t bytes) override;
  /// Fleet-wide usage of a tenant; false (`done` never called) when Redis is not connected.
  bool usage(const std::string& tenant, const TenantQuota& quota, UsageHandler done);
  /// Refreshes this broker's liveness key; call well within `ttl`.
  void keep_alive(std::chrono::milliseconds ttl);
  /// Writes the limits under `<prefix>quota:<tenant>` and the names in `<prefix>tenants`, for tools
  /// that read Redis. Admission does not read them: each broker applies its own tenants.yaml.
  void publish(const TenantTable& table);

  const std::string& broker_id() const { return broker_id_; }

 private:
  RedisConnection& redis_;
  std::string prefix_;
  std::string broker_id_;
};

}  // namespace bridge::broker
