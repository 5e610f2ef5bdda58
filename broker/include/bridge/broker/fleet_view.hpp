#pragma once
/// @file FleetView: the broker's workers, published in Redis for operators and other tools.

#include <chrono>
#include <string>

#include "bridge/broker/redis_connection.hpp"

namespace bridge::broker {

struct WorkerRecord;

/// Keys (docs/operations.md): `<prefix>workers` is a set of worker ids; `<prefix>worker:<id>` a hash
/// with fields id, broker, device_kind, device_name, kernels (comma-separated), slots, inflight,
/// completed, last_heartbeat_unix_ms. Each hash expires unless refreshed, so a dead broker's workers
/// disappear by themselves. Writes are fire-and-forget and skipped while Redis is down.
/// Loop-thread only.
class FleetView {
 public:
  FleetView(RedisConnection& redis, std::string prefix, std::string broker_id);

  /// Writes the worker's record and refreshes its expiry to `ttl`.
  void publish(const WorkerRecord& worker, std::chrono::milliseconds ttl);
  void remove(const std::string& worker_id);

 private:
  RedisConnection& redis_;
  std::string prefix_;
  std::string broker_id_;
};

}  // namespace bridge::broker
