#include "bridge/worker/worker_options.hpp"

#include <algorithm>

#include "bridge/core/broker_watch.hpp"
#include "bridge/core/config_map.hpp"
#include "bridge/core/limits_config.hpp"
#include "bridge/core/protocol.hpp"

namespace bridge::worker {

void WorkerOptions::validate() const {
  using core::ConfigError;
  // Each connection's routing id is the id, '/', and 16 hex digits; ZeroMQ takes at most 255 bytes.
  if (id.size() > kMaxIdBytes || id.size() > limits.max_name_bytes)
    throw ConfigError("id: at most " + std::to_string(std::min<std::uint64_t>(kMaxIdBytes, limits.max_name_bytes)) +
                      " bytes, got " + std::to_string(id.size()));
  if (broker.empty()) throw ConfigError("broker: set the broker's worker endpoint, e.g. tcp://127.0.0.1:5556");
  (void)core::parse_broker_list(broker);  // throws on an empty entry
  (void)cuda_device();                    // throws on a malformed device
  if (breaker_failures == 0) throw ConfigError("breaker_failures: must be at least 1");
  if (slots == 0 || slots > 4096) throw ConfigError("slots: must be between 1 and 4096, got " + std::to_string(slots));
  if (prefetch > core::protocol::WorkerHello::kMaxPrefetch)
    throw ConfigError("prefetch: must be between 0 and " + std::to_string(core::protocol::WorkerHello::kMaxPrefetch) +
                      ", got " + std::to_string(prefetch));
  if (threads > 4096) throw ConfigError("threads: must be between 0 (all) and 4096");
  if (heartbeat_ms < 10 || heartbeat_ms > 60000) throw ConfigError("heartbeat_ms: must be between 10 and 60000");
  if (liveness < 2 || liveness > 100) throw ConfigError("liveness: must be between 2 and 100");
  if (link_floor_mib_s < 1 || link_floor_mib_s > 100000)
    throw ConfigError("link_floor_mib_s: must be between 1 and 100000 (MiB/s)");
  if (max_batch == 0 || max_batch > 1024) throw ConfigError("max_batch: must be between 1 (off) and 1024");
  if (max_delay_us > 1000000) throw ConfigError("max_delay_us: must be between 0 and 1000000 (1 s)");
}

int WorkerOptions::cuda_device() const {
  if (device == "cpu") return -1;
  if (device == "auto") return 0;
  const std::string prefix = "cuda:";
  const std::string ordinal = device.rfind(prefix, 0) == 0 ? device.substr(prefix.size()) : "";
  if (ordinal.empty() || ordinal.size() > 3 || ordinal.find_first_not_of("0123456789") != std::string::npos)
    throw core::ConfigError("device: '" + device + "' is not one of auto, cpu, cuda:N (N a device number)");
  return std::stoi(ordinal);
}

WorkerOptions load_worker_options(const std::string& path) {
  WorkerOptions o;
  auto config = core::ConfigMap::load_file(path);
  config.get("broker", o.broker);
  config.get("key_file", o.key_file);
  config.get("broker_key_file", o.broker_key_file);
  config.get("id", o.id);
  config.get("device", o.device);
  config.get("slots", o.slots);
  config.get("prefetch", o.prefetch);
  config.get("threads", o.threads);
  config.get("output_pool_bytes", o.output_pool_bytes);
  config.get("heartbeat_ms", o.heartbeat_ms);
  config.get("liveness", o.liveness);
  config.get("link_floor_mib_s", o.link_floor_mib_s);
  config.get("drain_timeout_ms", o.drain_timeout_ms);
  config.get("log_level", o.log_level);
  config.get("log_format", o.log_format);
  config.get("max_batch", o.max_batch);
  config.get("max_delay_us", o.max_delay_us);
  config.get("metrics_listen", o.metrics_listen);
  config.get("metrics_token_file", o.metrics_token_file);
  config.get("cuda_plugin", o.cuda_plugin);
  config.get("gpu_pool_bytes", o.gpu_pool_bytes);
  config.get("pinned_pool_bytes", o.pinned_pool_bytes);
  config.get("breaker_failures", o.breaker_failures);
  config.get("breaker_window_ms", o.breaker_window_ms);
  config.get("breaker_cooldown_ms", o.breaker_cooldown_ms);
  core::read_limits(config.child("limits"), o.limits);
  config.reject_unknown_keys();
  if (!o.key_file.empty()) o.key_file = core::resolve_path(o.key_file, path);
  if (!o.metrics_token_file.empty()) o.metrics_token_file = core::resolve_path(o.metrics_token_file, path);
  if (!o.broker_key_file.empty()) o.broker_key_file = core::resolve_path(o.broker_key_file, path);
  return o;
}

}  // namespace bridge::worker
