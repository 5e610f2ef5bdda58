#include "bridge/broker/quota_leases.hpp"

#include <algorithm>
#include <cmath>

namespace bridge::broker {
namespace {

constexpr std::uint64_t kBlocksPerLimit = 16;

std::uint64_t job_block(const TenantQuota& q) {
  return std::max<std::uint64_t>(1, q.max_inflight_jobs / kBlocksPerLimit);
}
std::uint64_t byte_block(const TenantQuota& q) { return q.max_inflight_bytes / kBlocksPerLimit; }
// Tokens are spent when taken, so blocks stay small: about 1/20 s of the rate, within the burst.
std::uint64_t token_block(const TenantQuota& q) {
  if (q.rate <= 0) return 0;
  return std::max<std::uint64_t>(1, static_cast<std::uint64_t>(std::min(q.effective_burst(), q.rate / 20)));
}

}  // namespace

bool QuotaLeases::fits(const Tenant& t, std::uint64_t bytes) const {
  return t.used_jobs + 1 <= t.leased.jobs && t.used_bytes + bytes <= t.leased.bytes &&
         (t.quota.rate <= 0 || t.leased.tokens >= 1);
}

void QuotaLeases::take(Tenant& t, std::uint64_t bytes) {
  ++t.used_jobs;
  t.used_bytes += bytes;
  if (t.quota.rate > 0) --t.leased.tokens;
}

QuotaLeases::Admit QuotaLeases::admit_locally(Tenant& t, std::uint64_t bytes, Decision* refusal) {
  Decision d;
  d.reachable = true;
  const auto now = std::chrono::steady_clock::now();
  if (t.quota.rate > 0) {
    const double burst = t.quota.effective_burst();
    t.local_tokens =
        t.local_tokens < 0
            ? burst
            : std::min(burst, t.local_tokens + std::chrono::duration<double>(now - t.local_at).count() * t.quota.rate);
    t.local_at = now;
  }
  if (t.used_jobs + 1 > t.quota.max_inflight_jobs) {
    d.limit = "max_inflight_jobs";
    d.in_use = static_cast<std::int64_t>(t.used_jobs);
  } else if (t.used_bytes + bytes > t.quota.max_inflight_bytes) {
    d.limit = "max_inflight_bytes";
    d.in_use = static_cast<std::int64_t>(t.used_bytes);
  } else if (t.quota.rate > 0 && t.local_tokens < 1) {
    d.limit = "rate";
    d.retry_after_ms = static_cast<std::uint32_t>(std::ceil((1 - t.local_tokens) / t.quota.rate * 1000));
  } else {
    ++t.used_jobs;
    t.used_bytes += bytes;
    if (t.quota.rate > 0) t.local_tokens -= 1;
    t.leased.jobs = std::max(t.leased.jobs, t.used_jobs);  // written to Redis as held on reconnect
    t.leased.bytes = std::max(t.leased.bytes, t.used_bytes);
    return Admit::kNow;
  }
  if (refusal != nullptr) *refusal = d;
  return Admit::kRefused;
}

QuotaLeases::Admit QuotaLeases::admit(const std::string& tenant, const TenantQuota& quota, std::uint64_t bytes,
                                      std::chrono::milliseconds ttl, DecisionHandler done, Decision* refusal) {
  Tenant& t = tenants_[tenant];
  t.quota = quota;
  // Jobs already waiting go first, so a small job cannot overtake a large one forever.
  if (t.waiters.empty() && fits(t, bytes)) {
    take(t, bytes);
    return Admit::kNow;
  }
  t.waiters.push_back({bytes, std::move(done), 0});
  if (t.pending == 0) {
    request(tenant, t, ttl);
    if (t.pending == 0) {  // Redis not connected
      t.waiters.pop_back();
      return fail_open_ ? admit_locally(t, bytes, refusal) : Admit::kUnreachable;
    }
  }
  return Admit::kLater;
}

void QuotaLeases::request(const std::string& name, Tenant& t, std::chrono::milliseconds ttl) {
  // Need: what the first waiting job lacks (so that Redis grants what it can, and refuses only when
  // not even that one fits). Want: what every waiting job lacks, plus a block of headroom.
  auto lack = [](std::uint64_t total, std::uint64_t held) { return total > held ? total - held : 0; };
  const bool rated = t.quota.rate > 0;
  const std::uint64_t first_bytes = t.waiters.front().bytes;
  std::uint64_t all_bytes = 0;
  for (const Waiter& w : t.waiters) all_bytes += w.bytes;
  const std::uint64_t waiting = t.waiters.size();
  const LeaseStore::Amounts need{lack(t.used_jobs + 1, t.leased.jobs), lack(t.used_bytes + first_bytes, t.leased.bytes),
                                 rated ? lack(1, t.leased.tokens) : 0};
  const LeaseStore::Amounts want{lack(t.used_jobs + waiting, t.leased.jobs) + job_block(t.quota) - 1,
                                 lack(t.used_bytes + all_bytes, t.leased.bytes) + byte_block(t.quota),
                                 rated ? lack(waiting, t.leased.tokens) + token_block(t.quota) - 1 : 0};
  const std::uint64_t id = next_request_++;
  if (!store_.lease(name, t.quota, need, want, ttl,
                    [this, name, id, ttl](Decision d) { on_reply(name, id, d, ttl); }))
    return;
  t.pending = id;
  for (Waiter& w : t.waiters)
    if (w.request == 0) w.request = id;
}

void QuotaLeases::on_reply(const std::string& name, std::uint64_t request_id, const Decision& d,
                           std::chrono::milliseconds ttl) {
  Tenant& t = tenants_[name];
  if (t.pending != request_id) {
    // An answer to a request made before the connection was lost: leases were reset since.
    if (d.admitted) store_.give_back(name, d.granted.jobs, d.granted.bytes);
    return;
  }
  t.pending = 0;
  if (d.admitted) {
    t.leased.jobs += d.granted.jobs;
    t.leased.bytes += d.granted.bytes;
    t.leased.tokens += d.granted.tokens;
  }
  // Serve waiters in order from the (grown) lease. One that still does not fit and was covered by
  // this request is refused with Redis's answer; later ones ask again.
  while (!t.waiters.empty()) {
    Waiter& w = t.waiters.front();
    if (fits(t, w.bytes)) {
      take(t, w.bytes);
      Decision ok;
      ok.reachable = true;
      ok.admitted = true;
      auto done = std::move(w.done);
      t.waiters.pop_front();
      done(ok);
      continue;
    }
    if (w.request != request_id) break;
    Decision refused = d;
    refused.admitted = false;
    if (d.admitted) {
      // Redis granted what was free, and it was not enough for this job too: name what ran short.
      if (t.used_jobs + 1 > t.leased.jobs) {
        refused.limit = "max_inflight_jobs";
      } else if (t.used_bytes + w.bytes > t.leased.bytes) {
        refused.limit = "max_inflight_bytes";
        refused.in_use = static_cast<std::int64_t>(t.used_bytes);
      } else {
        refused.limit = "rate";
        refused.retry_after_ms = static_cast<std::uint32_t>(std::ceil(1000.0 / t.quota.rate));
      }
    }
    auto done = std::move(w.done);
    t.waiters.pop_front();
    done(refused);
  }
  if (!t.waiters.empty()) request(name, t, ttl);
  if (!t.waiters.empty() && t.pending == 0) {
    // Redis went away meanwhile: the rest cannot be decided.
    Decision lost;
    auto waiters = std::move(t.waiters);
    t.waiters.clear();
    for (auto& w : waiters) w.done(lost);
  }
}

void QuotaLeases::release(const std::string& tenant, std::uint64_t bytes) {
  Tenant& t = tenants_[tenant];
  if (t.used_jobs > 0) --t.used_jobs;
  t.used_bytes -= std::min(t.used_bytes, bytes);
}

void QuotaLeases::resync() {
  for (auto& [name, t] : tenants_) t.stale = true;
}

void QuotaLeases::trim() {
  for (auto& [name, t] : tenants_) {
    if (t.pending != 0) continue;
    if (t.stale) {
      // With no grant in flight, `leased` is the whole truth of this broker's share: set, not added.
      store_.set_held(name, t.leased.jobs, t.leased.bytes);
      t.stale = false;
    }
    // Keep one block of headroom while the tenant is busy, nothing while it is idle.
    const bool idle = t.used_jobs == 0 && t.waiters.empty();
    const std::uint64_t keep_jobs = t.used_jobs + (idle ? 0 : job_block(t.quota));
    const std::uint64_t keep_bytes = t.used_bytes + (idle ? 0 : byte_block(t.quota));
    const std::uint64_t spare_jobs = t.leased.jobs > keep_jobs ? t.leased.jobs - keep_jobs : 0;
    const std::uint64_t spare_bytes = t.leased.bytes > keep_bytes ? t.leased.bytes - keep_bytes : 0;
    if (spare_jobs == 0 && spare_bytes == 0) continue;
    store_.give_back(name, spare_jobs, spare_bytes);
    t.leased.jobs -= spare_jobs;
    t.leased.bytes -= spare_bytes;
    if (idle) t.leased.tokens = 0;  // spent tokens cannot go back; an idle tenant drops them
  }
}

void QuotaLeases::on_redis(bool connected) {
  for (auto& [name, t] : tenants_) {
    // Jobs still waiting cannot be decided without Redis (normally answered already by the lost replies).
    auto waiters = std::move(t.waiters);
    t.waiters.clear();
    for (auto& w : waiters) w.done(Decision{});
    if (connected) {
      // Redis may have restarted empty: what this broker holds is what is in use.
      store_.set_held(name, t.used_jobs, t.used_bytes);
    }
    t.leased = {t.used_jobs, t.used_bytes, 0};
    t.pending = 0;
  }
}

}  // namespace bridge::broker
