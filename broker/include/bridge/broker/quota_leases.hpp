#pragma once
/// @file QuotaLeases: admits most jobs from capacity this broker leased from Redis in blocks.

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <string>

#include "bridge/broker/quota_store.hpp"

namespace bridge::broker {

/// Per tenant, this broker leases capacity from Redis (QuotaStore) in blocks of 1/16 of each limit
/// (at least 1) and admits jobs against its lease locally, with no Redis command. Only when a job
/// does not fit does it ask Redis to grow the lease, for every job then waiting plus one block of
/// headroom. Spare capacity beyond one block goes back on every trim(), and all of it when the
/// tenant is idle, so other brokers can have it. Small limits (under 16) lease one unit at a time,
/// so they are exact. A broker may hold at most one unused block per limit that others cannot use
/// meanwhile. Leases are dropped when Redis disconnects (fail closed) and rewritten on reconnect.
/// Loop-thread only.
class QuotaLeases {
 public:
  using Decision = LeaseStore::Decision;
  using DecisionHandler = std::function<void(Decision)>;
  enum class Admit { kNow, kLater, kUnreachable, kRefused };

  explicit QuotaLeases(LeaseStore& store) : store_(store) {}

  /// Fail open: while Redis is unreachable, admit against the tenant's whole limits counted by this
  /// broker alone (a local token bucket for the rate), instead of answering kUnreachable.
  void set_fail_open(bool fail_open) { fail_open_ = fail_open; }

  /// kNow: admitted from the lease (or, failing open, locally). kLater: `done` is called once when
  /// Redis has answered. kUnreachable: Redis is needed and not connected; `done` is never called.
  /// kRefused: refused locally while failing open; `refusal` says why; `done` is never called.
  Admit admit(const std::string& tenant, const TenantQuota& quota, std::uint64_t bytes, std::chrono::milliseconds ttl,
              DecisionHandler done, Decision* refusal = nullptr);
  /// A job admitted earlier has ended.
  void release(const std::string& tenant, std::uint64_t bytes);
  /// Gives spare capacity back; call regularly (every heartbeat).
  void trim();
  /// Redis connection state changed: drop leases on loss, rewrite what is in use on reconnect.
  void on_redis(bool connected);
  /// Redis accepts writes again after refusing them (out of memory, say): give-backs it refused left
  /// its counts above this broker's leases, so each tenant's lease is written as it is, by the next
  /// trim() at which no request of that tenant is in flight.
  void resync();

 private:
  struct Waiter {
    std::uint64_t bytes;
    DecisionHandler done;
    std::uint64_t request;  // the lease request that asked for this job (0: none yet)
  };
  struct Tenant {
    LeaseStore::Amounts leased;  // jobs and bytes held in Redis; tokens held here
    std::uint64_t used_jobs = 0;
    std::uint64_t used_bytes = 0;
    std::deque<Waiter> waiters;
    std::uint64_t pending = 0;  // lease request in flight (0: none)
    bool stale = false;         // Redis may disagree with `leased` (resync())
    TenantQuota quota;          // as of the last admit()
    double local_tokens = -1;   // fail-open rate bucket (-1: full, not started)
    std::chrono::steady_clock::time_point local_at{};
  };

  bool fits(const Tenant& t, std::uint64_t bytes) const;
  Admit admit_locally(Tenant& t, std::uint64_t bytes, Decision* refusal);
  void take(Tenant& t, std::uint64_t bytes);
  void request(const std::string& name, Tenant& t, std::chrono::milliseconds ttl);
  void on_reply(const std::string& name, std::uint64_t request, const Decision& d, std::chrono::milliseconds ttl);

  LeaseStore& store_;
  std::map<std::string, Tenant> tenants_;
  std::uint64_t next_request_ = 1;
  bool fail_open_ = false;
};

}  // namespace bridge::broker
