#include "bridge/broker/quota_store.hpp"

#include <hiredis/hiredis.h>

namespace bridge::broker {
namespace {

// KEYS[1]: the tenant's in-flight hash (field: broker id, value: jobs that broker holds)
// ARGV[1]: this broker's id; ARGV[2]: the limit; ARGV[3]: prefix of brokers' liveness keys;
// ARGV[4]: this broker's liveness TTL in ms
// Returns {admitted (0/1), jobs in flight after the decision}.
// It reads liveness keys not named in KEYS, so it needs a standalone Redis (not Redis Cluster).
constexpr const char* kAcquireScript = R"lua(
redis.call('SET', ARGV[3] .. ARGV[1], '1', 'PX', ARGV[4])
local held = redis.call('HGETALL', KEYS[1])
local total = 0
for i = 1, #held, 2 do
  local broker = held[i]
  if broker ~= ARGV[1] and redis.call('EXISTS', ARGV[3] .. broker) == 0 then
    redis.call('HDEL', KEYS[1], broker)
  else
    total = total + tonumber(held[i + 1])
  end
end
if total >= tonumber(ARGV[2]) then
  return {0, total}
end
redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
return {1, total + 1}
)lua";

}  // namespace

QuotaStore::QuotaStore(RedisConnection& redis, std::string prefix, std::string broker_id)
    : redis_(redis), prefix_(std::move(prefix)), broker_id_(std::move(broker_id)) {}

bool QuotaStore::acquire(const std::string& tenant, std::uint32_t limit, std::chrono::milliseconds ttl,
                         DecisionHandler done) {
  // EVAL with the script text each time: Redis caches the compiled script, and unlike EVALSHA it
  // cannot fail with NOSCRIPT after a Redis restart or SCRIPT FLUSH.
  return redis_.command(
      {"EVAL", kAcquireScript, "1", prefix_ + "inflight:" + tenant, broker_id_, std::to_string(limit), prefix_ + "broker:",
       std::to_string(ttl.count())},
      [done = std::move(done)](const redisReply* reply) {
        Decision d;
        if (reply != nullptr && reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 &&
            reply->element[0]->type == REDIS_REPLY_INTEGER && reply->element[1]->type == REDIS_REPLY_INTEGER) {
          d.reachable = true;
          d.admitted = reply->element[0]->integer == 1;
          d.in_use = reply->element[1]->integer;
        } else if (reply != nullptr && reply->type == REDIS_REPLY_ERROR) {
          d.error = std::string(reply->str, reply->len);
        }
        done(d);
      });
}

void QuotaStore::release(const std::string& tenant) {
  redis_.command({"HINCRBY", prefix_ + "inflight:" + tenant, broker_id_, "-1"});
}

void QuotaStore::keep_alive(std::chrono::milliseconds ttl) {
  redis_.command({"SET", prefix_ + "broker:" + broker_id_, "1", "PX", std::to_string(ttl.count())});
}

}  // namespace bridge::broker
