#pragma once
/// @file Worker options: one field per key of config/worker.yaml (documented there).

#include <cstdint>
#include <string>

#include "bridge/core/liveness.hpp"
#include "bridge/core/wire.hpp"
#include "bridge/worker/batcher.hpp"

namespace bridge::worker {

struct WorkerOptions {
  static constexpr std::uint32_t kDefaultSlots = 4;
  static constexpr std::uint32_t kDefaultHeartbeatMs = 1000;
  static constexpr std::uint32_t kDefaultLiveness = 3;
  static constexpr std::uint32_t kDefaultDrainTimeoutMs = 10000;

  std::string broker = "tcp://127.0.0.1:5556";  ///< the broker's worker endpoint ("backend")
  /// CURVE (docs/security.md): this worker's key file (bridgectl keygen NAME: NAME.key; its public
  /// key is listed in the broker's workers_file) and the broker's public key file. Both empty: no
  /// CURVE, for a broker with `security: none`. Relative to the worker.yaml that names them.
  std::string key_file;
  std::string broker_key_file;
  std::string id;  ///< empty: "<hostname>-<pid>-<random>"; at most kMaxIdBytes
  static constexpr std::size_t kMaxIdBytes = 200;
  std::string device = "auto";                  ///< auto | cpu | cuda:N (auto: GPU 0 if usable, else CPU)
  std::uint32_t slots = kDefaultSlots;          ///< jobs that run here at once
  std::uint32_t prefetch = 0;                   ///< jobs the broker may send beyond slots, to wait here
  std::uint32_t threads = 0;                    ///< CPU threads for kernels; 0 = all
  std::uint64_t output_pool_bytes = 1ull << 30; ///< CPU backend: pool of output buffers (cap); 0 = none
  std::uint32_t heartbeat_ms = kDefaultHeartbeatMs;
  std::uint32_t liveness = kDefaultLiveness;    ///< broker silent this many heartbeats -> reconnect
  /// The slowest rate, in MiB/s, at which the link to the broker is expected to move a large message:
  /// a broker that announced one is waited for its transfer time at this rate on top of its liveness.
  std::uint32_t link_floor_mib_s = core::kDefaultLinkFloorMibS;
  std::uint32_t drain_timeout_ms = kDefaultDrainTimeoutMs;  ///< on SIGTERM, wait this long for jobs
  std::string log_level = "info";
  std::string log_format = "text";  ///< text | json (one JSON object per line)
  core::Limits limits;
  /// HOST:PORT of /metrics, /healthz, /readyz over HTTP; empty = off. Port 0 picks a free one.
  std::string metrics_listen;
  std::string metrics_token_file;  ///< bearer token /metrics and /readyz require; empty: none

  // Dynamic batching (batcher.hpp): compatible small jobs waiting together share one launch.
  std::uint32_t max_batch = 8;                  ///< most jobs per launch; 1 = off
  std::uint32_t max_delay_us = 0;               ///< how long a job may wait for company; 0 = none

  // CUDA backend (used when device is auto or cuda:N).
  std::string cuda_plugin;                      ///< path of libbridge_cuda.so; empty: look beside the binary
  std::uint64_t gpu_pool_bytes = 0;             ///< device memory pool cap; 0 = 90% of the device
  std::uint64_t pinned_pool_bytes = 1ull << 30; ///< pinned host staging pool cap
  std::uint32_t breaker_failures = 3;           ///< GPU failures within breaker_window_ms that disable it
  std::uint32_t breaker_window_ms = 10000;
  std::uint32_t breaker_cooldown_ms = 30000;    ///< how long the GPU stays disabled

  BatchOptions batching() const { return {max_batch, max_delay_us}; }

  /// CUDA device ordinal of `device`: N for cuda:N, 0 for auto, -1 for cpu.
  int cuda_device() const;

  /// Throws core::ConfigError naming the field and the allowed range.
  void validate() const;
};

/// Reads a worker.yaml (every key optional; unknown keys refused). Throws core::ConfigError.
WorkerOptions load_worker_options(const std::string& path);

}  // namespace bridge::worker
