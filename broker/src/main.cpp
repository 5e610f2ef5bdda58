// bridge-broker: routes jobs from clients to workers, with quotas and the fleet view in Redis.
#include <csignal>
#include <cstdio>
#include <iostream>

#include <spdlog/spdlog.h>

#include "bridge/broker/broker_service.hpp"
#include "bridge/core/args.hpp"
#include "bridge/core/config_map.hpp"
#include "bridge/core/logging.hpp"

namespace {

constexpr const char* kUsage = R"(usage: bridge-broker [--config FILE] [--frontend ENDPOINT] [--backend ENDPOINT]
                     [--redis URL] [--tenants FILE] [--id ID] [--log-level LEVEL]

Routes GpuBridge jobs from clients (frontend) to workers (backend). Flags override the config file
(config/broker.yaml documents every key). SIGINT/SIGTERM: stop accepting, drain, exit.
)";

bridge::broker::BrokerService* g_service = nullptr;

void on_signal(int) {
  if (g_service != nullptr) g_service->stop_notifier().notify();  // eventfd write: async-signal-safe
}

}  // namespace

int main(int argc, char** argv) {
  using namespace bridge;
  try {
    core::Args args(argc, argv, {"help"});
    if (args.has("help")) {
      std::cout << kUsage;
      return 0;
    }
    args.reject_unknown({"help", "config", "frontend", "backend", "redis", "tenants", "id", "log-level"});
    broker::BrokerOptions options;
    if (args.has("config")) options = broker::load_broker_options(args.get("config"));
    options.frontend = args.get("frontend", options.frontend);
    options.backend = args.get("backend", options.backend);
    options.redis = args.get("redis", options.redis);
    options.tenants_file = args.get("tenants", options.tenants_file);
    options.id = args.get("id", options.id);
    options.log_level = args.get("log-level", options.log_level);
    options.validate();
    core::init_logging("broker", options.log_level);
    auto tenants = broker::TenantTable::load_file(options.tenants_file);

    broker::BrokerService service(options, std::move(tenants));
    g_service = &service;
    std::signal(SIGINT, on_signal);
    std::signal(SIGTERM, on_signal);
    service.run();
    g_service = nullptr;
    return 0;
  } catch (const core::ConfigError& e) {
    std::fprintf(stderr, "bridge-broker: %s\n", e.what());
    return 2;
  } catch (const zmq::error_t& e) {
    std::fprintf(stderr, "bridge-broker: cannot bind: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bridge-broker: fatal: %s\n", e.what());
    return 1;
  }
}
