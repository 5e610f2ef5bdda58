#pragma once
/// @file StoreEpoch: tells when Redis lost the fleet's data, from a marker key that never expires.

#include <functional>
#include <string>

#include "bridge/broker/redis_connection.hpp"

namespace bridge::broker {

/// Redis that restarts without persistence, is flushed, or fails over to a replica that never had
/// the data answers as if nothing happened: actors read as new, leases as free. So the first broker
/// to reach an empty Redis writes a random epoch to `<prefix>epoch` (no expiry), and every broker
/// reads it back on each (re)connect and heartbeat. Missing or changed after this broker saw one
/// means the data this broker relied on is gone: `on_loss` runs once per such event (the broker then
/// rebuilds its quota leases and marks the actors it knows lost), and the epoch found is adopted.
/// A loss within one heartbeat of a broker's start is indistinguishable from a new fleet.
/// Loop-thread only, like RedisConnection.
class StoreEpoch {
 public:
  using LossHandler = std::function<void(const std::string& why)>;

  StoreEpoch(RedisConnection& redis, std::string prefix, LossHandler on_loss);

  /// Reads the epoch (creating it if Redis has none); at most one check in flight.
  void check();
  /// The epoch this broker holds to; empty before the first answer.
  const std::string& epoch() const { return epoch_; }

 private:
  void on_reply(bool created, std::string found);

  RedisConnection& redis_;
  std::string key_;
  LossHandler on_loss_;
  std::string epoch_;
  bool in_flight_ = false;
};

}  // namespace bridge::broker
