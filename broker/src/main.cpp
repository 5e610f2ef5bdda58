// bridge-broker: routes jobs from clients to workers, with quotas and the fleet view in Redis.
#include <iostream>

#include <spdlog/spdlog.h>

#include "bridge/broker/broker_service.hpp"
#include "bridge/core/args.hpp"
#include "bridge/core/config_map.hpp"
#include "bridge/core/logging.hpp"
#include "bridge/core/program.hpp"

namespace {

constexpr const char* kUsage = R"(usage: bridge-broker [--config FILE] [--frontend ENDPOINT] [--backend ENDPOINT]
                     [--redis URL] [--redis-password-file FILE] [--tenants FILE] [--workers FILE] [--client-keys-dir DIR] [--secret-key-file FILE]
                     [--security curve|none] [--id ID] [--enforce-quotas true|false] [--metrics HOST:PORT]
                     [--log-level LEVEL] [--log-format text|json]

Routes GpuBridge jobs from clients (frontend) to workers (backend). Flags override the config file
(config/broker.yaml documents every key). SIGINT/SIGTERM: stop accepting, drain, exit.
Security (docs/security.md): with security: curve (the default) the broker needs its key pair
(--secret-key-file, from bridgectl keygen) and the workers file of enrolled worker keys; clients
are known by the keys listed under their tenants in the tenants file.
SIGHUP: re-read the tenants and workers files now (edits are also picked up by themselves within tenants_reload_ms).
)";

}  // namespace

int main(int argc, char** argv) {
  using namespace bridge;
  return core::run_program("bridge-broker", [&] {
    core::Args args(argc, argv, {"help"});
    if (args.has("help")) {
      std::cout << kUsage;
      return 0;
    }
    args.reject_unknown({"help", "config", "frontend", "backend", "redis", "tenants", "id", "log-level", "log-format", "enforce-quotas",
                         "metrics", "workers", "secret-key-file", "security", "redis-password-file",
                         "client-keys-dir"});
    broker::BrokerOptions options;
    if (args.has("config")) options = broker::load_broker_options(args.get("config"));
    options.frontend = args.get("frontend", options.frontend);
    options.backend = args.get("backend", options.backend);
    options.redis = args.get("redis", options.redis);
    options.metrics_listen = args.get("metrics", options.metrics_listen);
    options.tenants_file = args.get("tenants", options.tenants_file);
    options.id = args.get("id", options.id);
    options.workers_file = args.get("workers", options.workers_file);
    options.client_keys_dir = args.get("client-keys-dir", options.client_keys_dir);
    options.redis_password_file = args.get("redis-password-file", options.redis_password_file);
    options.secret_key_file = args.get("secret-key-file", options.secret_key_file);
    if (args.has("security")) {
      const std::string v = args.get("security");
      if (v != "curve" && v != "none") throw core::ConfigError("--security: use curve or none");
      options.secure = v == "curve";
    }
    options.log_level = args.get("log-level", options.log_level);
    if (args.has("enforce-quotas")) {
      const std::string v = args.get("enforce-quotas");
      if (v != "true" && v != "false") throw core::ConfigError("--enforce-quotas: use true or false");
      options.enforce_quotas = v == "true";
    }
    options.validate();
    options.log_format = args.get("log-format", options.log_format);
    core::init_logging("broker", options.log_level, options.log_format);
    auto tenants = broker::load_tenants(options);

    broker::BrokerService service(options, std::move(tenants));
    core::stop_on_signals(service.stop_notifier());
    core::reload_on_sighup(service.reload_notifier());
    service.run();
    core::clear_stop_signals();
    return 0;
  });
}
