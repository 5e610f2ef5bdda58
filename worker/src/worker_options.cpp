#include "bridge/worker/worker_options.hpp"

#include "bridge/core/config_map.hpp"
#include "bridge/core/limits_config.hpp"

namespace bridge::worker {

void WorkerOptions::validate() const {
  using core::ConfigError;
  if (broker.empty()) throw ConfigError("broker: set the broker's worker endpoint, e.g. tcp://127.0.0.1:5556");
  if (device != "cpu")
    throw ConfigError("device: '" + device + "' is not supported by this build; use 'cpu'");
  if (slots == 0 || slots > 4096) throw ConfigError("slots: must be between 1 and 4096, got " + std::to_string(slots));
  if (threads > 4096) throw ConfigError("threads: must be between 0 (all) and 4096");
  if (heartbeat_ms < 10 || heartbeat_ms > 60000) throw ConfigError("heartbeat_ms: must be between 10 and 60000");
  if (liveness < 2 || liveness > 100) throw ConfigError("liveness: must be between 2 and 100");
}

WorkerOptions load_worker_options(const std::string& path) {
  WorkerOptions o;
  auto config = core::ConfigMap::load_file(path);
  config.get("broker", o.broker);
  config.get("id", o.id);
  config.get("device", o.device);
  config.get("slots", o.slots);
  config.get("threads", o.threads);
  config.get("heartbeat_ms", o.heartbeat_ms);
  config.get("liveness", o.liveness);
  config.get("drain_timeout_ms", o.drain_timeout_ms);
  config.get("log_level", o.log_level);
  core::read_limits(config.child("limits"), o.limits);
  config.reject_unknown_keys();
  return o;
}

}  // namespace bridge::worker
