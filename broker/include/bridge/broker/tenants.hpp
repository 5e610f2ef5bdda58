#pragma once
/// @file TenantTable: the tenants and their quotas, read from config/tenants.yaml.

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace bridge::broker {

/// One tenant's limits. Every field is a key under `defaults:` or under the tenant in tenants.yaml,
/// documented in config/tenants.yaml.
struct TenantQuota {
  static constexpr std::uint32_t kDefaultMaxInflightJobs = 64;
  static constexpr std::uint64_t kDefaultMaxInflightBytes = 4ull << 30;
  static constexpr std::uint64_t kDefaultMaxResidentBytes = 1ull << 30;
  static constexpr std::uint32_t kDefaultMaxJobMs = 600000;
  static constexpr std::uint32_t kDefaultMaxActors = 1024;

  /// Jobs of this tenant admitted and not yet answered, across every broker sharing the Redis.
  std::uint32_t max_inflight_jobs = kDefaultMaxInflightJobs;
  /// Input bytes of those jobs, across every broker.
  std::uint64_t max_inflight_bytes = kDefaultMaxInflightBytes;
  /// Bytes of the resident tensors all of the tenant's actors keep (device memory on GPU workers),
  /// fleet-wide; 0 = no limit. A call whose kept outputs would pass it is RESOURCE_EXHAUSTED.
  std::uint64_t max_resident_bytes = kDefaultMaxResidentBytes;
  /// Longest a job may run on a worker, from dispatch to result; past it the worker is told to stop
  /// and the client gets DEADLINE_EXCEEDED naming this limit. Bounds compute time whatever the
  /// client's timeout.
  std::uint32_t max_job_ms = kDefaultMaxJobMs;
  /// Actors of the tenant a broker keeps active at once (each costs memory in the broker and an
  /// activation on a worker). A call to another actor deactivates the tenant's least recently used
  /// idle one (its state stays in Redis); with none idle, the call is RESOURCE_EXHAUSTED.
  std::uint32_t max_actors = kDefaultMaxActors;
  /// Jobs admitted per second, fleet-wide (token bucket); 0 = no rate limit.
  double rate = 0;
  /// Bucket size: jobs that may be admitted at once after a quiet spell; 0 = max(1, rate).
  double burst = 0;
  /// Share of the workers when tenants compete (weighted fair queuing); > 0.
  double weight = 1;
  /// Priorities the tenant may use (JobRequest.priority).
  int min_priority = -128;
  int max_priority = 127;
  /// Kernels the tenant may run; empty = every kernel.
  std::vector<std::string> kernels;

  double effective_burst() const { return burst > 0 ? burst : (rate > 1 ? rate : 1); }
  bool allows_kernel(const std::string& kernel) const;
  bool operator==(const TenantQuota&) const = default;
};

/// Whether `name` may name a tenant: 1 to 64 of [A-Za-z0-9._-]. Tenant names appear in Redis keys
/// ("<tenant>/<actor>") and metric labels, so no separator may occur in one.
bool valid_tenant_name(std::string_view name);

/// Immutable after load; safe to read from any thread.
class TenantTable {
 public:
  /// Reads a tenants.yaml. Throws core::ConfigError naming file, line and key.
  static TenantTable load_file(const std::string& path);
  /// Same, from text (tests); `origin` names it in errors.
  static TenantTable parse(const std::string& text, const std::string& origin);
  /// A table with exactly these tenants, and keys (Z85 client public key -> tenant; operator keys).
  /// Throws core::ConfigError if a key is both a tenant's and an operator's.
  static TenantTable of(std::map<std::string, TenantQuota> tenants,
                        std::map<std::string, std::string> tenant_of_key = {},
                        std::map<std::string, std::string> operator_keys = {});

  /// The tenant's quota, or nullptr for a tenant that is not configured.
  const TenantQuota* find(const std::string& tenant) const;
  const std::map<std::string, TenantQuota>& tenants() const { return tenants_; }

  /// Adds the public keys found in a keys directory: DIR/tenants/TENANT/*.pub for TENANT (a tenant
  /// the table has) and DIR/operators/*.pub as operator keys, in the format bridgectl keygen writes.
  /// A file for a tenant not in the table, or a key listed twice for different owners, is a
  /// core::ConfigError naming the file.
  void add_keys_from_dir(const std::string& dir);

  /// The tenant a client key is enrolled for (`keys:` under the tenant), or nullptr.
  const std::string* tenant_of_key(const std::string& key) const;
  /// Whether the key is one of `operator_keys:` (may see every tenant in status, quota and actor show).
  bool is_operator_key(const std::string& key) const;
  std::size_t key_count() const { return tenant_of_key_.size() + operator_keys_.size(); }
  /// Keys in one table and not in `other` (tenant keys whose tenant differs count too).
  std::size_t keys_not_in(const TenantTable& other) const;

 private:
  std::map<std::string, TenantQuota> tenants_;
  std::map<std::string, std::string> tenant_of_key_;
  std::set<std::string> operator_keys_;
};

}  // namespace bridge::broker
