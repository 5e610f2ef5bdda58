#include "bridge/broker/fleet_view.hpp"

#include <chrono>

#include "bridge/broker/worker_registry.hpp"

namespace bridge::broker {

FleetView::FleetView(RedisConnection& redis, std::string prefix, std::string broker_id)
    : redis_(redis), prefix_(std::move(prefix)), broker_id_(std::move(broker_id)) {}

void FleetView::publish(const WorkerRecord& w, std::chrono::milliseconds ttl) {
  if (!redis_.connected()) return;
  std::string kernels;
  for (const auto& k : w.kernels) kernels += (kernels.empty() ? "" : ",") + k;
  const auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch()).count();
  const std::string key = prefix_ + "worker:" + w.id;
  // MULTI/EXEC is not needed: a reader seeing the hash between HSET and PEXPIRE sees valid data.
  redis_.command({"HSET", key, "id", w.id, "broker", broker_id_, "device_kind", device_kind_name(w.device.kind),
                  "device_name", w.device.name, "kernels", kernels, "slots", std::to_string(w.slots), "prefetch",
                  std::to_string(w.prefetch), "inflight", std::to_string(w.inflight.size()), "completed",
                  std::to_string(w.completed), "last_heartbeat_unix_ms", std::to_string(now_ms)});
  redis_.command({"PEXPIRE", key, std::to_string(ttl.count())});
  redis_.command({"SADD", prefix_ + "workers", w.id});
}

void FleetView::remove(const std::string& worker_id) {
  redis_.command({"DEL", prefix_ + "worker:" + worker_id});
  redis_.command({"SREM", prefix_ + "workers", worker_id});
}

}  // namespace bridge::broker
