#pragma once
/// @file Broker options: one field per key of config/broker.yaml (documented there).

#include <cstdint>
#include <string>

#include "bridge/core/liveness.hpp"
#include "bridge/core/wire.hpp"

namespace bridge::broker {

struct BrokerOptions {
  static constexpr std::uint32_t kDefaultHeartbeatMs = 1000;
  static constexpr std::uint32_t kDefaultLiveness = 3;
  static constexpr std::uint32_t kDefaultTimeoutMs = 30000;
  static constexpr std::uint32_t kDefaultMaxAttempts = 3;
  static constexpr std::uint32_t kDefaultMaxQueuedJobs = 100000;
  static constexpr std::uint32_t kDefaultRetryAfterMs = 100;
  static constexpr std::uint32_t kDefaultAdmissionTimeoutMs = 2000;
  static constexpr std::uint32_t kDefaultDrainTimeoutMs = 10000;
  static constexpr std::uint64_t kDefaultMaxUnreadResultBytes = 256ull << 20;
  static constexpr std::uint32_t kDefaultClientStallMs = 30000;
  static constexpr std::uint64_t kDefaultMaxUnreadTenantBytes = 1ull << 30;
  static constexpr std::uint32_t kDefaultCancelGraceMs = 30000;

  std::string id;                                 ///< empty: "<hostname>-<pid>-<random>"
  std::string frontend = "tcp://127.0.0.1:5555";  ///< clients connect here (ROUTER)
  std::string backend = "tcp://127.0.0.1:5556";   ///< workers connect here (ROUTER)
  std::string redis = "redis://127.0.0.1:6379/0";
  std::string redis_prefix = "bridge:";  ///< prefix of every Redis key the broker writes
  /// A file whose first line is the Redis password (mode 0600 advised); overrides a password in
  /// `redis`, where `redis://USER@HOST` then names the ACL user. Empty: $GPUBRIDGE_REDIS_PASSWORD if
  /// set, else the URL's. Relative to the broker.yaml that names it.
  std::string redis_password_file;
  /// An actor call that keeps outputs is answered only once this many replicas have its new state
  /// (Redis WAIT), so that a Sentinel fail-over cannot lose it. 0: once the master has it.
  std::uint32_t redis_wait_replicas = 0;
  /// How long one WAIT may hold the Redis connection (other commands queue behind it).
  std::uint32_t redis_wait_timeout_ms = 50;
  /// A Redis connection with a command unanswered this long is dropped and made again (behind
  /// Sentinel, asking the sentinels again): a frozen master, or a link that drops packets, closes
  /// nothing by itself.
  std::uint32_t redis_reply_timeout_ms = 5000;
  std::string tenants_file = "tenants.yaml";  ///< relative to the broker.yaml that names it
  /// true (key `security: curve`): every connection is CURVE-encrypted and authenticated; a client
  /// is the tenant its key is listed under in tenants_file, a worker must be in workers_file.
  /// false (`security: none`): no encryption, no identity (a request's tenant field is believed);
  /// logged as a warning at every start. Key `security`: curve | none.
  bool secure = true;
  /// The broker's own key pair (bridgectl keygen NAME: NAME.key); clients and workers are given
  /// NAME.pub. Required with security: curve. Relative to the broker.yaml that names it.
  std::string secret_key_file;
  /// Public keys of the workers allowed to connect; re-read like tenants_file. Relative to broker.yaml.
  std::string workers_file = "workers.yaml";
  /// Client keys as files, beside those listed in tenants_file: DIR/tenants/TENANT/*.pub and
  /// DIR/operators/*.pub (docker-compose makes them so). Re-read with tenants_file. Empty: none.
  std::string client_keys_dir;
  std::uint32_t heartbeat_ms = kDefaultHeartbeatMs;
  std::uint32_t liveness = kDefaultLiveness;  ///< a worker silent this many of its heartbeats is dead
  /// The slowest rate, in MiB/s, at which the link to a worker is expected to move a large message:
  /// a worker that announced one is waited for its transfer time at this rate on top of its liveness.
  std::uint32_t link_floor_mib_s = core::kDefaultLinkFloorMibS;
  std::uint32_t default_timeout_ms = kDefaultTimeoutMs;             ///< for jobs that set none
  std::uint32_t max_attempts = kDefaultMaxAttempts;                 ///< dispatches before WORKER_LOST
  std::uint32_t max_queued_jobs = kDefaultMaxQueuedJobs;            ///< beyond it: QUEUE_FULL
  std::uint32_t retry_after_ms = kDefaultRetryAfterMs;              ///< advised with RESOURCE_EXHAUSTED / QUEUE_FULL
  std::uint32_t admission_timeout_ms = kDefaultAdmissionTimeoutMs;  ///< Redis must decide within this
  std::uint32_t drain_timeout_ms = kDefaultDrainTimeoutMs;          ///< on SIGTERM
  /// Bytes of results the broker holds for one client that has not read them; over it the client's
  /// new jobs are RESOURCE_EXHAUSTED.
  std::uint64_t max_unread_result_bytes = kDefaultMaxUnreadResultBytes;
  /// Bytes of unread results all the clients of one tenant may hold together; over it the tenant's
  /// new jobs are RESOURCE_EXHAUSTED, from any of its clients. 0 = no such bound.
  std::uint64_t max_unread_tenant_bytes = kDefaultMaxUnreadTenantBytes;
  /// A client over max_unread_result_bytes this long is dropped: its jobs are cancelled and it is
  /// sent nothing until what it holds has drained.
  std::uint32_t client_stall_ms = kDefaultClientStallMs;
  /// A worker that has not stopped a job this long after the broker told it to (deadline, cancel,
  /// max_job_ms) is declared lost, which frees the job's slot and its tenant's lease.
  std::uint32_t cancel_grace_ms = kDefaultCancelGraceMs;
  /// false: jobs skip the Redis quota check (max_inflight_jobs, max_inflight_bytes, rate); tenant,
  /// kernel, priority and size checks still apply. For single-tenant fleets, and to measure admission.
  bool enforce_quotas = true;
  /// While Redis is unreachable: false (fail closed) answers new jobs UNAVAILABLE; true (fail open)
  /// admits them against the last known quotas, counted by this broker alone. Key `redis_outage`:
  /// fail-closed | fail-open.
  bool fail_open = false;
  std::uint32_t tenants_reload_ms = 1000;  ///< how often tenants_file is checked for edits; 0 = only on SIGHUP
  /// An actor without calls for this long is deactivated on its worker (its state stays in Redis).
  std::uint32_t actor_idle_ms = 300000;
  /// HOST:PORT of /metrics, /healthz, /readyz over HTTP; empty = off. Port 0 picks a free one.
  std::string metrics_listen;
  /// A file holding a bearer token that /metrics and /readyz then require; empty: none (keep
  /// metrics_listen on loopback then). Relative to the broker.yaml that names it.
  std::string metrics_token_file;
  std::string log_level = "info";
  std::string log_format = "text";  ///< text | json (one JSON object per line)
  core::Limits limits;

  /// Throws core::ConfigError naming the field and the allowed range.
  void validate() const;
};

/// The Redis address to connect to: `redis` with the password from redis_password_file or
/// $GPUBRIDGE_REDIS_PASSWORD when either is set. Throws core::ConfigError.
struct RedisAddress;
RedisAddress redis_address(const BrokerOptions& options);

/// tenants_file with the keys of client_keys_dir added. Throws core::ConfigError.
class TenantTable;
TenantTable load_tenants(const BrokerOptions& options);

/// Reads a broker.yaml (every key optional; unknown keys refused). `tenants_file` comes back resolved
/// against the file's directory. Throws core::ConfigError.
BrokerOptions load_broker_options(const std::string& path);

}  // namespace bridge::broker
