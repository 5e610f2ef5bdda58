#include "bridge/broker/tenants.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "bridge/core/config_map.hpp"
#include "bridge/core/curve.hpp"

namespace bridge::broker {
namespace {

void read_quota(const core::ConfigMap& map, TenantQuota& q) {
  map.get("max_inflight_jobs", q.max_inflight_jobs);
  map.get("max_inflight_bytes", q.max_inflight_bytes);
  map.get("max_resident_bytes", q.max_resident_bytes);
  map.get("max_job_ms", q.max_job_ms);
  map.get("max_actors", q.max_actors);
  map.get("rate", q.rate);
  map.get("burst", q.burst);
  map.get("weight", q.weight);
  map.get("min_priority", q.min_priority);
  map.get("max_priority", q.max_priority);
  map.get("kernels", q.kernels);
  if (q.max_inflight_jobs == 0) map.fail("max_inflight_jobs", "must be at least 1");
  if (q.max_inflight_bytes == 0) map.fail("max_inflight_bytes", "must be at least 1");
  if (q.max_job_ms == 0) map.fail("max_job_ms", "must be at least 1 (milliseconds)");
  if (q.max_actors == 0) map.fail("max_actors", "must be at least 1");
  if (!std::isfinite(q.rate) || q.rate < 0)
    map.fail("rate", "must be 0 (no limit) or a positive number of jobs per second");
  if (!std::isfinite(q.burst) || q.burst < 0) map.fail("burst", "must be 0 (= rate) or positive");
  if (!std::isfinite(q.weight) || q.weight <= 0) map.fail("weight", "must be a positive number");
  if (q.min_priority < -128 || q.min_priority > 127) map.fail("min_priority", "must be between -128 and 127");
  if (q.max_priority < -128 || q.max_priority > 127) map.fail("max_priority", "must be between -128 and 127");
  if (q.min_priority > q.max_priority) map.fail("min_priority", "must not exceed max_priority");
  map.reject_unknown_keys();
}

// A client public key listed in tenants.yaml: Z85, and listed once in the whole file, so that a key
// names one tenant (or the operator) and nothing else.
void add_key(const core::ConfigMap& map, const std::string& field, const std::string& key, const std::string& owner,
             std::map<std::string, std::string>& into) {
  if (!core::valid_curve_key(key))
    map.fail(field,
             "'" + key + "' is not a CURVE public key (40 characters of Z85, from bridgectl keygen's .pub file)");
  if (!into.emplace(key, owner).second) map.fail(field, "key " + key + " is listed twice");
}

TenantTable from_config(const core::ConfigMap& config) {
  std::map<std::string, std::string> tenant_of_key, operator_of_key;
  TenantQuota defaults;
  read_quota(config.child("defaults"), defaults);
  const auto tenants = config.child("tenants");
  std::map<std::string, TenantQuota> entries;
  for (const auto& name : tenants.keys()) {
    if (!valid_tenant_name(name))
      tenants.fail(name,
                   "tenant names must be 1 to 64 characters of A-Z a-z 0-9 . _ - (no '/', spaces or other signs)");
    TenantQuota quota = defaults;
    const auto entry = tenants.child(name);
    std::vector<std::string> keys;
    entry.get("keys", keys);
    for (const auto& key : keys) add_key(entry, "keys", key, name, tenant_of_key);
    read_quota(entry, quota);
    entries.emplace(name, quota);
  }
  std::vector<std::string> operators;
  config.get("operator_keys", operators);
  for (const auto& key : operators) add_key(config, "operator_keys", key, "", operator_of_key);
  tenants.reject_unknown_keys();
  config.reject_unknown_keys();
  return TenantTable::of(std::move(entries), std::move(tenant_of_key), std::move(operator_of_key));
}

}  // namespace

bool valid_tenant_name(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
           c == '-';
  });
}

bool TenantQuota::allows_kernel(const std::string& kernel) const {
  return kernels.empty() || std::find(kernels.begin(), kernels.end(), kernel) != kernels.end();
}

TenantTable TenantTable::of(std::map<std::string, TenantQuota> tenants,
                            std::map<std::string, std::string> tenant_of_key,
                            std::map<std::string, std::string> operator_keys) {
  TenantTable t;
  t.tenants_ = std::move(tenants);
  for (auto& [key, tenant] : tenant_of_key)
    if (operator_keys.contains(key))
      throw core::ConfigError("key " + key + " is listed both for tenant " + tenant + " and in operator_keys");
  t.tenant_of_key_ = std::move(tenant_of_key);
  for (auto& [key, unused] : operator_keys) t.operator_keys_.insert(key);
  return t;
}

const std::string* TenantTable::tenant_of_key(const std::string& key) const {
  auto it = tenant_of_key_.find(key);
  return it == tenant_of_key_.end() ? nullptr : &it->second;
}

bool TenantTable::is_operator_key(const std::string& key) const { return operator_keys_.contains(key); }

std::size_t TenantTable::keys_not_in(const TenantTable& other) const {
  std::size_t n = 0;
  for (const auto& [key, tenant] : tenant_of_key_) {
    const std::string* there = other.tenant_of_key(key);
    n += there == nullptr || *there != tenant;
  }
  for (const auto& key : operator_keys_) n += !other.is_operator_key(key);
  return n;
}

void TenantTable::add_keys_from_dir(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  auto public_files = [&](const fs::path& folder) {
    std::vector<fs::path> files;
    for (const auto& entry : fs::directory_iterator(folder, ec))
      if (entry.is_regular_file() && entry.path().extension() == ".pub") files.push_back(entry.path());
    std::sort(files.begin(), files.end());
    return files;
  };
  for (const auto& file : public_files(fs::path(dir) / "operators")) {
    const std::string key = core::read_key_file(file.string(), false).public_key;
    if (tenant_of_key_.contains(key)) throw core::ConfigError(file.string() + ": the key is a tenant's too");
    operator_keys_.insert(key);
  }
  for (const auto& entry : fs::directory_iterator(fs::path(dir) / "tenants", ec)) {
    if (!entry.is_directory()) continue;
    const std::string tenant = entry.path().filename().string();
    for (const auto& file : public_files(entry.path())) {
      if (!tenants_.contains(tenant))
        throw core::ConfigError(file.string() + ": tenant '" + tenant + "' is not in the tenants file");
      const std::string key = core::read_key_file(file.string(), false).public_key;
      auto [it, added] = tenant_of_key_.emplace(key, tenant);
      if ((!added && it->second != tenant) || operator_keys_.contains(key))
        throw core::ConfigError(file.string() + ": the key is listed for another tenant or as an operator's");
    }
  }
}

TenantTable TenantTable::load_file(const std::string& path) { return from_config(core::ConfigMap::load_file(path)); }

TenantTable TenantTable::parse(const std::string& text, const std::string& origin) {
  return from_config(core::ConfigMap::parse(text, origin));
}

const TenantQuota* TenantTable::find(const std::string& tenant) const {
  auto it = tenants_.find(tenant);
  return it == tenants_.end() ? nullptr : &it->second;
}

}  // namespace bridge::broker
