#pragma once
/// @file MemoryLeaseStore: a LeaseStore for unit tests of leasing and admission. It holds one
/// fleet's capacity in memory, summed as Redis would, and answers lease requests only when the test
/// says (as Redis would, later).

#include <algorithm>

#include "bridge/broker/quota_store.hpp"
#include "deferred_replies.hpp"

namespace bridge::broker {

// Capacity of one fleet: what every broker holds, summed as Redis would, with this broker's share.
class MemoryLeaseStore final : public LeaseStore {
 public:
  bool reachable = true;
  std::uint64_t held_jobs = 0, held_bytes = 0;  // this broker's lease, as the store sees it
  std::uint64_t others_jobs = 0;                // what other brokers hold
  bool refuse_writes = false;                   // give-backs lost (Redis at maxmemory, say)
  int leases = 0;

  bool lease(const std::string&, const TenantQuota& quota, const Amounts& need, const Amounts& want,
             std::chrono::milliseconds, DecisionHandler done) override {
    if (!reachable) return false;
    ++leases;
    replies_.push([=, this, done = std::move(done)] {
      LeaseStore::Decision d;
      d.reachable = true;
      const std::uint64_t free_jobs = quota.max_inflight_jobs - (held_jobs + others_jobs);
      if (free_jobs < need.jobs) {
        d.limit = "max_inflight_jobs";
        d.in_use = static_cast<std::int64_t>(held_jobs + others_jobs);
      } else {
        d.admitted = true;
        d.granted = {std::min(want.jobs, free_jobs), want.bytes, 0};
        held_jobs += d.granted.jobs;
        held_bytes += d.granted.bytes;
      }
      done(d);
    });
    return true;
  }
  void give_back(const std::string&, std::uint64_t jobs, std::uint64_t bytes) override {
    if (refuse_writes) return;
    held_jobs -= jobs;
    held_bytes -= std::min(held_bytes, bytes);
  }
  void set_held(const std::string&, std::uint64_t jobs, std::uint64_t bytes) override {
    if (refuse_writes) return;
    held_jobs = jobs;
    held_bytes = bytes;
  }
  /// Answers the oldest lease request; false if none waits.
  bool answer() { return replies_.answer(); }

 private:
  DeferredReplies replies_;
};

}  // namespace bridge::broker
