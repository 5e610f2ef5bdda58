#pragma once
/// @file Worker options: one field per key of config/worker.yaml (documented there).

#include <cstdint>
#include <string>

#include "bridge/core/wire.hpp"

namespace bridge::worker {

struct WorkerOptions {
  static constexpr std::uint32_t kDefaultSlots = 4;
  static constexpr std::uint32_t kDefaultHeartbeatMs = 1000;
  static constexpr std::uint32_t kDefaultLiveness = 3;
  static constexpr std::uint32_t kDefaultDrainTimeoutMs = 10000;

  std::string broker = "tcp://127.0.0.1:5556";  ///< the broker's worker endpoint ("backend")
  std::string id;                               ///< empty: "<hostname>-<pid>-<random>"
  std::string device = "cpu";                   ///< cpu (CUDA devices: issue 3)
  std::uint32_t slots = kDefaultSlots;          ///< jobs the broker may keep in flight here
  std::uint32_t threads = 0;                    ///< CPU threads for kernels; 0 = all
  std::uint32_t heartbeat_ms = kDefaultHeartbeatMs;
  std::uint32_t liveness = kDefaultLiveness;    ///< broker silent this many heartbeats -> reconnect
  std::uint32_t drain_timeout_ms = kDefaultDrainTimeoutMs;  ///< on SIGTERM, wait this long for jobs
  std::string log_level = "info";
  core::Limits limits;

  /// Throws core::ConfigError naming the field and the allowed range.
  void validate() const;
};

/// Reads a worker.yaml (every key optional; unknown keys refused). Throws core::ConfigError.
WorkerOptions load_worker_options(const std::string& path);

}  // namespace bridge::worker
