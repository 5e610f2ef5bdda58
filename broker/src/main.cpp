// bridge-broker: routes jobs from clients to workers, with quotas and the fleet view in Redis.
#include <spdlog/spdlog.h>

#include "bridge/core/program.hpp"
#include "bridge/broker/broker_service.hpp"
#include "bridge/core/cli.hpp"
#include "bridge/core/config_map.hpp"
#include "bridge/core/logging.hpp"

namespace {

constexpr const char* kAbout =
    R"(Routes GpuBridge jobs from clients (frontend) to workers (backend). Flags override the config file
(config/broker.yaml documents every key). SIGINT/SIGTERM: stop accepting, drain, exit.)";

constexpr const char* kFooter = R"(
Security (docs/security.md): with security: curve (the default) the broker needs its key pair
(--secret-key-file, from bridgectl keygen) and the workers file of enrolled worker keys; clients
are known by the keys listed under their tenants in the tenants file.
SIGHUP: re-read the tenants and workers files now (edits are also picked up by themselves within tenants_reload_ms).
Exit status: 0 stopped cleanly, 1 a failure while running, 2 a usage or configuration error.)";

}  // namespace

int main(int argc, char** argv) {
  bridge::core::use_huge_pages_for_large_blocks(argv);  // may run this program again, first thing
  using namespace bridge;
  CLI::App app(kAbout, "bridge-broker");
  app.footer(kFooter);
  std::string config;
  broker::BrokerOptions options;
  core::Overrides flags;
  app.add_option("--config", config, "the broker.yaml to read first");
  flags.add(app, "--frontend", options.frontend, "client endpoint to bind (tcp://HOST:PORT)");
  flags.add(app, "--backend", options.backend, "worker endpoint to bind");
  flags.add(app, "--redis", options.redis, "redis://[USER@]HOST:PORT/DB");
  flags.add(app, "--redis-password-file", options.redis_password_file, "file holding the Redis password");
  flags.add(app, "--tenants", options.tenants_file, "tenants.yaml: quotas and client keys");
  flags.add(app, "--workers", options.workers_file, "workers.yaml: enrolled worker keys");
  flags.add(app, "--client-keys-dir", options.client_keys_dir, "DIR/tenants/T/*.pub and DIR/operators/*.pub");
  flags.add(app, "--secret-key-file", options.secret_key_file,
            "the broker's key pair (NAME.key from bridgectl keygen)");
  flags.add_either(app, "--security", options.secure, "curve", "none", "curve (keys and encryption) or none");
  flags.add(app, "--id", options.id, "this broker's id in Redis and in logs");
  flags.add_either(app, "--enforce-quotas", options.enforce_quotas, "true", "false", "check tenants' quotas in Redis");
  flags.add(app, "--metrics", options.metrics_listen, "HOST:PORT of /metrics, /healthz, /readyz");
  flags.add(app, "--log-level", options.log_level, "trace, debug, info, warn, error or off");
  flags.add(app, "--log-format", options.log_format, "text or json");
  return core::run_cli(app, argc, argv, [&] {
    if (!config.empty()) options = broker::load_broker_options(config);
    flags.apply();
    options.validate();
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
