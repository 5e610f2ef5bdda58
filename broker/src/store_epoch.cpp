#include "bridge/broker/store_epoch.hpp"

#include <hiredis/hiredis.h>

#include <spdlog/spdlog.h>

#include "bridge/core/endpoint.hpp"

namespace bridge::broker {
namespace {

// KEYS: the epoch key. ARGV: a new random epoch. Returns {1, epoch} if it existed, {0, epoch} if
// this call created it. Atomic, so two brokers meeting an empty Redis agree on one epoch.
constexpr const char* kEpochScript = R"lua(
local epoch = redis.call('GET', KEYS[1])
if epoch then return {1, epoch} end
redis.call('SET', KEYS[1], ARGV[1])
return {0, ARGV[1]}
)lua";

}  // namespace

StoreEpoch::StoreEpoch(RedisConnection& redis, std::string prefix, LossHandler on_loss)
    : redis_(redis), key_(std::move(prefix) + "epoch"), on_loss_(std::move(on_loss)) {}

void StoreEpoch::check() {
  if (in_flight_) return;
  const bool sent =
      redis_.command({"EVAL", kEpochScript, "1", key_, core::random_hex(128)}, [this](const redisReply* r) {
        in_flight_ = false;
        if (r == nullptr || r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
            r->element[0]->type != REDIS_REPLY_INTEGER || r->element[1]->type != REDIS_REPLY_STRING)
          return;  // no answer, or a refusal (logged by the connection): asked again next heartbeat
        on_reply(r->element[0]->integer == 0, std::string(r->element[1]->str, r->element[1]->len));
      });
  in_flight_ = sent;
}

void StoreEpoch::on_reply(bool created, std::string found) {
  if (epoch_.empty()) {
    spdlog::debug("redis: fleet epoch {} ({})", found, created ? "new" : "found");
    epoch_ = std::move(found);
    return;
  }
  if (found == epoch_) return;
  const std::string why = created ? "its key " + key_ +
                                        " was gone, so Redis holds none of the data written before (it restarted "
                                        "without persistence, was flushed, or failed over to a replica without it)"
                                  : "its key " + key_ + " changed from " + epoch_ + " to " + found +
                                        ": another broker found Redis empty first, so the data written before is gone";
  epoch_ = std::move(found);
  on_loss_(why);
}

}  // namespace bridge::broker
