#include "bridge/broker/quota_store.hpp"

#include <hiredis/hiredis.h>

#include <sstream>

namespace bridge::broker {
namespace {

// Shared head of both scripts: sums a per-broker hash over live brokers, dropping dead ones' fields.
// ARGV[1]: this broker's id; ARGV[2]: prefix of brokers' liveness keys.
constexpr const char* kLiveTotal = R"lua(
local function live_total(key)
  local held = redis.call('HGETALL', key)
  local total = 0
  for i = 1, #held, 2 do
    local broker = held[i]
    if broker ~= ARGV[1] and redis.call('EXISTS', ARGV[2] .. broker) == 0 then
      redis.call('HDEL', key, broker)
    else
      total = total + tonumber(held[i + 1])
    end
  end
  return total
end
-- Token bucket: tokens after refilling at `rate` per second up to `burst`, and the time used.
local function refill(key, rate, burst)
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
  local state = redis.call('HMGET', key, 'tokens', 'at_us')
  local tokens = tonumber(state[1]) or burst
  local at = tonumber(state[2]) or now
  return math.min(burst, tokens + (now - at) / 1000000 * rate), now
end
)lua";

// Grows this broker's lease. KEYS: jobs hash, bytes hash, rate bucket. ARGV[3..]: ttl ms, max jobs,
// max bytes, rate, burst, then need and want for jobs, bytes and tokens. Each grant is min(want,
// what is free) and must reach need, else nothing is granted and the limit is named.
// Returns {granted 0/1, limit, in use, retry after ms, jobs, bytes, tokens}.
constexpr const char* kAcquireBody = R"lua(
redis.call('SET', ARGV[2] .. ARGV[1], '1', 'PX', ARGV[3])
local jobs = live_total(KEYS[1])
local free_jobs = tonumber(ARGV[4]) - jobs
if free_jobs < tonumber(ARGV[8]) then return {0, 'max_inflight_jobs', jobs, 0, 0, 0, 0} end
local bytes = live_total(KEYS[2])
local free_bytes = tonumber(ARGV[5]) - bytes
if free_bytes < tonumber(ARGV[10]) then return {0, 'max_inflight_bytes', bytes, 0, 0, 0, 0} end
local grant_tokens = 0
local rate = tonumber(ARGV[6])
if rate > 0 and tonumber(ARGV[12]) > 0 then
  local burst = tonumber(ARGV[7])
  local tokens, now = refill(KEYS[3], rate, burst)
  if tokens < tonumber(ARGV[12]) then
    redis.call('HSET', KEYS[3], 'tokens', tostring(tokens), 'at_us', tostring(now))
    return {0, 'rate', 0, math.ceil((tonumber(ARGV[12]) - tokens) / rate * 1000), 0, 0, 0}
  end
  grant_tokens = math.min(tonumber(ARGV[13]), math.floor(tokens))
  redis.call('HSET', KEYS[3], 'tokens', tostring(tokens - grant_tokens), 'at_us', tostring(now))
  -- An idle bucket is full again after burst/rate seconds; then its state is not needed.
  redis.call('PEXPIRE', KEYS[3], math.ceil(burst / rate * 1000) + 1000)
end
local grant_jobs = math.min(tonumber(ARGV[9]), free_jobs)
local grant_bytes = math.min(tonumber(ARGV[11]), free_bytes)
redis.call('HINCRBY', KEYS[1], ARGV[1], grant_jobs)
redis.call('HINCRBY', KEYS[2], ARGV[1], grant_bytes)
return {1, '', jobs + grant_jobs, 0, grant_jobs, grant_bytes, grant_tokens}
)lua";

// KEYS: jobs hash, bytes hash, rate bucket. ARGV[3..]: rate, burst. Returns {jobs, bytes, tokens or "-1"}.
constexpr const char* kUsageBody = R"lua(
local jobs = live_total(KEYS[1])
local bytes = live_total(KEYS[2])
local rate = tonumber(ARGV[3])
if rate <= 0 then return {jobs, bytes, '-1'} end
local tokens = refill(KEYS[3], rate, tonumber(ARGV[4]))
return {jobs, bytes, tostring(tokens)}
)lua";

std::string number(double v) {
  std::ostringstream out;
  out.precision(17);
  out << v;
  return out.str();
}

// EVAL carries the script text each time: Redis caches the compiled script, and unlike EVALSHA it
// cannot fail with NOSCRIPT after a Redis restart or SCRIPT FLUSH. These scripts read liveness keys
// they are not passed in KEYS, so they need a standalone Redis (or Sentinel), not Redis Cluster.
const std::string kAcquireScript = std::string(kLiveTotal) + kAcquireBody;
const std::string kUsageScript = std::string(kLiveTotal) + kUsageBody;

}  // namespace

QuotaStore::QuotaStore(RedisConnection& redis, std::string prefix, std::string broker_id)
    : redis_(redis), prefix_(std::move(prefix)), broker_id_(std::move(broker_id)) {}

bool QuotaStore::lease(const std::string& tenant, const TenantQuota& quota, const Amounts& need, const Amounts& want,
                       std::chrono::milliseconds ttl, DecisionHandler done) {
  return redis_.command(
      {"EVAL", kAcquireScript, "3", prefix_ + "inflight:" + tenant, prefix_ + "inflight_bytes:" + tenant,
       prefix_ + "rate:" + tenant, broker_id_, prefix_ + "broker:", std::to_string(ttl.count()),
       std::to_string(quota.max_inflight_jobs), std::to_string(quota.max_inflight_bytes), number(quota.rate),
       number(quota.effective_burst()), std::to_string(need.jobs), std::to_string(want.jobs),
       std::to_string(need.bytes), std::to_string(want.bytes), std::to_string(need.tokens),
       std::to_string(want.tokens)},
      [done = std::move(done)](const redisReply* reply) {
        Decision d;
        auto integer = [&](std::size_t i) { return reply->element[i]->integer; };
        bool shaped = reply != nullptr && reply->type == REDIS_REPLY_ARRAY && reply->elements == 7;
        for (std::size_t i : {0, 2, 3, 4, 5, 6}) shaped = shaped && reply->element[i]->type == REDIS_REPLY_INTEGER;
        if (shaped) {
          d.reachable = true;
          d.admitted = integer(0) == 1;
          if (reply->element[1]->type == REDIS_REPLY_STRING)
            d.limit.assign(reply->element[1]->str, reply->element[1]->len);
          d.in_use = integer(2);
          d.retry_after_ms = static_cast<std::uint32_t>(std::max<long long>(0, integer(3)));
          d.granted = {static_cast<std::uint64_t>(integer(4)), static_cast<std::uint64_t>(integer(5)),
                       static_cast<std::uint64_t>(integer(6))};
        } else if (reply != nullptr && reply->type == REDIS_REPLY_ERROR) {
          d.error = std::string(reply->str, reply->len);
        }
        done(d);
      });
}

void QuotaStore::give_back(const std::string& tenant, std::uint64_t jobs, std::uint64_t bytes) {
  if (jobs > 0) redis_.command({"HINCRBY", prefix_ + "inflight:" + tenant, broker_id_, "-" + std::to_string(jobs)});
  if (bytes > 0)
    redis_.command({"HINCRBY", prefix_ + "inflight_bytes:" + tenant, broker_id_, "-" + std::to_string(bytes)});
}

void QuotaStore::set_held(const std::string& tenant, std::uint64_t jobs, std::uint64_t bytes) {
  redis_.command({"HSET", prefix_ + "inflight:" + tenant, broker_id_, std::to_string(jobs)});
  redis_.command({"HSET", prefix_ + "inflight_bytes:" + tenant, broker_id_, std::to_string(bytes)});
}

bool QuotaStore::usage(const std::string& tenant, const TenantQuota& quota, UsageHandler done) {
  return redis_.command({"EVAL", kUsageScript, "3", prefix_ + "inflight:" + tenant,
                         prefix_ + "inflight_bytes:" + tenant, prefix_ + "rate:" + tenant, broker_id_,
                         prefix_ + "broker:", number(quota.rate), number(quota.effective_burst())},
                        [done = std::move(done)](const redisReply* reply) {
                          Usage u;
                          if (reply != nullptr && reply->type == REDIS_REPLY_ARRAY && reply->elements == 3 &&
                              reply->element[0]->type == REDIS_REPLY_INTEGER &&
                              reply->element[1]->type == REDIS_REPLY_INTEGER &&
                              reply->element[2]->type == REDIS_REPLY_STRING) {
                            u.known = true;
                            u.jobs = reply->element[0]->integer;
                            u.bytes = reply->element[1]->integer;
                            u.rate_tokens = std::stod(std::string(reply->element[2]->str, reply->element[2]->len));
                          }
                          done(u);
                        });
}

void QuotaStore::keep_alive(std::chrono::milliseconds ttl) {
  // A write every heartbeat: its success is what tells that Redis accepts writes again.
  redis_.probe_write({"SET", prefix_ + "broker:" + broker_id_, "1", "PX", std::to_string(ttl.count())});
}

void QuotaStore::publish(const TenantTable& table) {
  if (!redis_.connected()) return;
  redis_.command({"DEL", prefix_ + "tenants"});
  for (const auto& [name, q] : table.tenants()) {
    std::string kernels;
    for (const auto& k : q.kernels) kernels += (kernels.empty() ? "" : ",") + k;
    redis_.command({"HSET", prefix_ + "quota:" + name, "max_inflight_jobs", std::to_string(q.max_inflight_jobs),
                    "max_inflight_bytes", std::to_string(q.max_inflight_bytes), "rate", number(q.rate), "burst",
                    number(q.effective_burst()), "weight", number(q.weight), "min_priority",
                    std::to_string(q.min_priority), "max_priority", std::to_string(q.max_priority), "kernels",
                    kernels});
    redis_.command({"SADD", prefix_ + "tenants", name});
  }
}

}  // namespace bridge::broker
