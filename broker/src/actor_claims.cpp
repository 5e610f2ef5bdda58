// ActorStore's claims: an actor's turn, fleet-wide, so that two brokers never run two of its calls
// at once (docs/architecture.md, "Several brokers"). The version in Redis still fences every write:
// a claim that expired under a stalled broker costs an ABORTED call, never a lost update.
#include <hiredis/hiredis.h>

#include "bridge/broker/actor_store.hpp"

namespace bridge::broker {
namespace {

// KEYS: the turn, the actor's hash. ARGV: token, ttl (ms). Returns {owned, version, lost}. A refused
// claim leaves a mark (the turn's key + ":w", for a second) that the holder reads when it gives the
// turn back, so that it lets the waiting broker in before taking the turn again.
constexpr const char* kClaimScript = R"lua(
local owned = redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2])
if not owned then
  if redis.call('GET', KEYS[1]) == ARGV[1] then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    owned = true
  else
    redis.call('SET', KEYS[1] .. ':w', '1', 'PX', 1000)
  end
end
local v = redis.call('HMGET', KEYS[2], 'version', 'lost')
return {owned and 1 or 0, tonumber(v[1] or '0'), tonumber(v[2] or '0')}
)lua";

// KEYS: the turn. ARGV: token. Returns 1 if another claim was refused meanwhile.
constexpr const char* kUnclaimScript = R"lua(
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return redis.call('DEL', KEYS[1] .. ':w')
)lua";

// KEYS: the turn. ARGV: token, ttl (ms). Returns {owned, asked for by another}.
constexpr const char* kRenewScript =
    "if redis.call('GET', KEYS[1]) ~= ARGV[1] then return {0, 0} end redis.call('PEXPIRE', KEYS[1], ARGV[2]) "
    "return {1, redis.call('EXISTS', KEYS[1] .. ':w')}";

}  // namespace

std::string ActorStore::turn_key(const std::string& tenant, const std::string& actor_id) const {
  return prefix_ + "actorturn:" + tenant + "/" + actor_id;
}

bool ActorStore::claim(const std::string& tenant, const std::string& actor_id, const std::string& token,
                       std::chrono::milliseconds ttl, ClaimHandler done) {
  return redis_.command({"EVAL", kClaimScript, "2", turn_key(tenant, actor_id), key(tenant, actor_id), token,
                         std::to_string(ttl.count())},
                        [done = std::move(done)](const redisReply* reply) {
                          Claim c;
                          if (reply != nullptr && reply->type == REDIS_REPLY_ARRAY && reply->elements == 3 &&
                              reply->element[0]->type == REDIS_REPLY_INTEGER &&
                              reply->element[1]->type == REDIS_REPLY_INTEGER &&
                              reply->element[2]->type == REDIS_REPLY_INTEGER) {
                            c.reachable = true;
                            c.owned = reply->element[0]->integer == 1;
                            c.version = static_cast<std::uint64_t>(reply->element[1]->integer);
                            c.lost_version = static_cast<std::uint64_t>(reply->element[2]->integer);
                          }
                          done(c);
                        });
}

void ActorStore::unclaim(const std::string& tenant, const std::string& actor_id, const std::string& token,
                         UnclaimHandler done) {
  const bool sent =
      redis_.command({"EVAL", kUnclaimScript, "1", turn_key(tenant, actor_id), token}, [done](const redisReply* reply) {
        if (done) done(reply != nullptr && reply->type == REDIS_REPLY_INTEGER && reply->integer > 0);
      });
  if (!sent && done) done(false);  // the turn expires on its own (ttl)
}

void ActorStore::renew(const std::string& tenant, const std::string& actor_id, const std::string& token,
                       std::chrono::milliseconds ttl, RenewHandler done) {
  redis_.command({"EVAL", kRenewScript, "1", turn_key(tenant, actor_id), token, std::to_string(ttl.count())},
                 [done = std::move(done)](const redisReply* reply) {
                   if (reply == nullptr || reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
                       reply->element[0]->type != REDIS_REPLY_INTEGER || reply->element[1]->type != REDIS_REPLY_INTEGER)
                     return;
                   done(reply->element[0]->integer == 1, reply->element[1]->integer == 1);
                 });
}

}  // namespace bridge::broker
