#include "bridge/broker/broker_options.hpp"

#include <cstdlib>
#include <fstream>

#include "bridge/broker/redis_connection.hpp"
#include "bridge/broker/tenants.hpp"
#include "bridge/core/config_map.hpp"
#include "bridge/core/limits_config.hpp"

namespace bridge::broker {

namespace {

// What is wrong with redis_wait_timeout_ms, or empty.
std::string wait_timeout_problem(const BrokerOptions& o) {
  if (o.redis_wait_replicas == 0 || (o.redis_wait_timeout_ms >= 1 && o.redis_wait_timeout_ms <= 10000)) return {};
  return "must be between 1 and 10000 (each WAIT holds the Redis connection that long at most)";
}

}  // namespace

void BrokerOptions::validate() const {
  using core::ConfigError;
  if (frontend.empty() || backend.empty()) throw ConfigError("frontend and backend endpoints must be set");
  if (frontend == backend) throw ConfigError("frontend and backend must be different endpoints");
  redis_address(*this);
  if (secure && secret_key_file.empty())
    throw ConfigError(
        "security: curve needs secret_key_file, the broker's key pair (make one with bridgectl keygen "
        "NAME and give NAME.key); or set security: none to run without encryption or identities, "
        "where any client may say it is any tenant");
  if (secure && workers_file.empty())
    throw ConfigError("security: curve needs workers_file, the public keys of the workers allowed to connect");
  if (heartbeat_ms < 10 || heartbeat_ms > 60000) throw ConfigError("heartbeat_ms: must be between 10 and 60000");
  if (const std::string problem = wait_timeout_problem(*this); !problem.empty())
    throw ConfigError("redis_wait_timeout_ms: " + problem);
  if (liveness < 2 || liveness > 100) throw ConfigError("liveness: must be between 2 and 100");
  if (redis_reply_timeout_ms < 100 || redis_reply_timeout_ms > 600000)
    throw ConfigError("redis_reply_timeout_ms: must be between 100 and 600000");
  if (link_floor_mib_s < 1 || link_floor_mib_s > 100000)
    throw ConfigError("link_floor_mib_s: must be between 1 and 100000 (MiB/s)");
  if (default_timeout_ms == 0) throw ConfigError("default_timeout_ms: must be at least 1");
  if (max_attempts == 0 || max_attempts > 100) throw ConfigError("max_attempts: must be between 1 and 100");
  if (max_queued_jobs == 0) throw ConfigError("max_queued_jobs: must be at least 1");
  if (admission_timeout_ms == 0) throw ConfigError("admission_timeout_ms: must be at least 1");
  if (max_unread_result_bytes == 0) throw ConfigError("max_unread_result_bytes: must be at least 1");
  if (client_stall_ms == 0) throw ConfigError("client_stall_ms: must be at least 1");
  if (cancel_grace_ms == 0) throw ConfigError("cancel_grace_ms: must be at least 1");
}

namespace {

// A key that takes one of two words, as a bool: true for `yes`. Absent: `current`.
bool read_either(const core::ConfigMap& config, const std::string& path, const std::string& key, bool current,
                 const std::string& yes, const std::string& no) {
  std::string word = current ? yes : no;
  config.get(key, word);
  if (word != yes && word != no)
    throw core::ConfigError(path + ": " + key + ": '" + word + "' is not " + yes + " or " + no);
  return word == yes;
}

}  // namespace

TenantTable load_tenants(const BrokerOptions& options) {
  TenantTable table = TenantTable::load_file(options.tenants_file);
  if (!options.client_keys_dir.empty()) table.add_keys_from_dir(options.client_keys_dir);
  return table;
}

RedisAddress redis_address(const BrokerOptions& options) {
  RedisAddress a = RedisAddress::parse(options.redis);
  std::string password;
  bool given = false;
  if (!options.redis_password_file.empty()) {
    std::ifstream in(options.redis_password_file);
    if (!in) throw core::ConfigError("redis_password_file " + options.redis_password_file + ": cannot read it");
    std::getline(in, password);
    if (!password.empty() && password.back() == '\r') password.pop_back();
    if (password.empty()) throw core::ConfigError("redis_password_file " + options.redis_password_file + " is empty");
    given = true;
  } else if (const char* env = std::getenv("GPUBRIDGE_REDIS_PASSWORD"); env != nullptr && *env != '\0') {
    password = env;
    given = true;
  }
  if (given) {
    if (a.user.empty()) a.user = a.password;  // redis://USER@HOST: the bare credential names the user
    a.password = password;
  }
  return a;
}

BrokerOptions load_broker_options(const std::string& path) {
  BrokerOptions o;
  auto config = core::ConfigMap::load_file(path);
  config.get("id", o.id);
  config.get("frontend", o.frontend);
  config.get("backend", o.backend);
  config.get("redis", o.redis);
  config.get("redis_prefix", o.redis_prefix);
  config.get("redis_password_file", o.redis_password_file);
  config.get("redis_wait_replicas", o.redis_wait_replicas);
  config.get("redis_wait_timeout_ms", o.redis_wait_timeout_ms);
  config.get("redis_reply_timeout_ms", o.redis_reply_timeout_ms);
  config.get("tenants_file", o.tenants_file);
  o.secure = read_either(config, path, "security", o.secure, "curve", "none");
  config.get("secret_key_file", o.secret_key_file);
  config.get("workers_file", o.workers_file);
  config.get("client_keys_dir", o.client_keys_dir);
  config.get("heartbeat_ms", o.heartbeat_ms);
  config.get("liveness", o.liveness);
  config.get("link_floor_mib_s", o.link_floor_mib_s);
  config.get("default_timeout_ms", o.default_timeout_ms);
  config.get("max_attempts", o.max_attempts);
  config.get("max_queued_jobs", o.max_queued_jobs);
  config.get("retry_after_ms", o.retry_after_ms);
  config.get("admission_timeout_ms", o.admission_timeout_ms);
  config.get("drain_timeout_ms", o.drain_timeout_ms);
  config.get("max_unread_result_bytes", o.max_unread_result_bytes);
  config.get("max_unread_tenant_bytes", o.max_unread_tenant_bytes);
  config.get("client_stall_ms", o.client_stall_ms);
  config.get("cancel_grace_ms", o.cancel_grace_ms);
  config.get("tenants_reload_ms", o.tenants_reload_ms);
  config.get("actor_idle_ms", o.actor_idle_ms);
  config.get("metrics_listen", o.metrics_listen);
  config.get("metrics_token_file", o.metrics_token_file);
  config.get("enforce_quotas", o.enforce_quotas);
  o.fail_open = read_either(config, path, "redis_outage", o.fail_open, "fail-open", "fail-closed");
  config.get("log_level", o.log_level);
  config.get("log_format", o.log_format);
  core::read_limits(config.child("limits"), o.limits);
  config.reject_unknown_keys();
  // Checked here too, where the error can name the file and line (validate() sees flags as well).
  if (config.has("redis")) {
    try {
      RedisAddress::parse(o.redis);
    } catch (const core::ConfigError& e) {
      config.fail("redis", e.what());
    }
  }
  if (const std::string problem = wait_timeout_problem(o); !problem.empty())
    config.fail(config.has("redis_wait_timeout_ms") ? "redis_wait_timeout_ms" : "redis_wait_replicas",
                "redis_wait_timeout_ms " + problem);
  o.tenants_file = core::resolve_path(o.tenants_file, path);
  if (!o.secret_key_file.empty()) o.secret_key_file = core::resolve_path(o.secret_key_file, path);
  if (!o.redis_password_file.empty()) o.redis_password_file = core::resolve_path(o.redis_password_file, path);
  if (!o.workers_file.empty()) o.workers_file = core::resolve_path(o.workers_file, path);
  if (!o.client_keys_dir.empty()) o.client_keys_dir = core::resolve_path(o.client_keys_dir, path);
  if (!o.metrics_token_file.empty()) o.metrics_token_file = core::resolve_path(o.metrics_token_file, path);
  return o;
}

}  // namespace bridge::broker
