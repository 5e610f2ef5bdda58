#include "bridge/broker/tenants.hpp"

#include "bridge/core/config_map.hpp"

namespace bridge::broker {
namespace {

void read_quota(const core::ConfigMap& map, TenantQuota& quota) {
  map.get("max_inflight_jobs", quota.max_inflight_jobs);
  if (quota.max_inflight_jobs == 0) map.fail("max_inflight_jobs", "must be at least 1");
  map.reject_unknown_keys();
}

TenantTable from_config(const core::ConfigMap& config) {
  TenantQuota defaults;
  read_quota(config.child("defaults"), defaults);
  const auto tenants = config.child("tenants");
  std::map<std::string, TenantQuota> entries;
  for (const auto& name : tenants.keys()) {
    if (name.empty() || name.size() > 256) tenants.fail(name, "tenant names must be 1 to 256 bytes");
    TenantQuota quota = defaults;
    read_quota(tenants.child(name), quota);
    entries.emplace(name, quota);
  }
  tenants.reject_unknown_keys();
  config.reject_unknown_keys();
  return TenantTable::of(std::move(entries));
}

}  // namespace

TenantTable TenantTable::load_file(const std::string& path) { return from_config(core::ConfigMap::load_file(path)); }

TenantTable TenantTable::parse(const std::string& text, const std::string& origin) {
  return from_config(core::ConfigMap::parse(text, origin));
}

const TenantQuota* TenantTable::find(const std::string& tenant) const {
  auto it = tenants_.find(tenant);
  return it == tenants_.end() ? nullptr : &it->second;
}

}  // namespace bridge::broker
