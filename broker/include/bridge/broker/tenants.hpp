#pragma once
/// @file TenantTable: the tenants and their quotas, read from config/tenants.yaml.

#include <cstdint>
#include <map>
#include <string>

namespace bridge::broker {

/// One tenant's limits. Every field is a key under `defaults:` or under the tenant in tenants.yaml.
struct TenantQuota {
  static constexpr std::uint32_t kDefaultMaxInflightJobs = 64;
  /// Jobs of this tenant admitted and not yet answered, across every broker sharing the Redis.
  std::uint32_t max_inflight_jobs = kDefaultMaxInflightJobs;
};

/// Immutable after load; safe to read from any thread.
class TenantTable {
 public:
  /// Reads a tenants.yaml. Throws core::ConfigError naming file, line and key.
  static TenantTable load_file(const std::string& path);
  /// Same, from text (tests); `origin` names it in errors.
  static TenantTable parse(const std::string& text, const std::string& origin);

  /// The tenant's quota, or nullptr for a tenant that is not configured.
  const TenantQuota* find(const std::string& tenant) const;
  const std::map<std::string, TenantQuota>& tenants() const { return tenants_; }

  /// A table with exactly these tenants.
  static TenantTable of(std::map<std::string, TenantQuota> tenants) {
    TenantTable t;
    t.tenants_ = std::move(tenants);
    return t;
  }

 private:
  std::map<std::string, TenantQuota> tenants_;
};

}  // namespace bridge::broker
