// bridge-worker: connects to a broker and runs catalog kernels for it.
#include <csignal>
#include <cstdio>
#include <iostream>

#include <spdlog/spdlog.h>

#include "bridge/core/args.hpp"
#include "bridge/core/config_map.hpp"
#include "bridge/core/logging.hpp"
#include "bridge/worker/cpu_backend.hpp"
#include "bridge/worker/worker_service.hpp"

namespace {

constexpr const char* kUsage = R"(usage: bridge-worker [--config FILE] [--broker ENDPOINT] [--slots N] [--device cpu]
                     [--threads N] [--id ID] [--log-level LEVEL] [--list-kernels]

Connects to a GpuBridge broker and runs jobs on this machine. Flags override the config file
(config/worker.yaml documents every key). SIGINT/SIGTERM: finish jobs in flight, say goodbye, exit.
)";

bridge::worker::WorkerService* g_service = nullptr;

void on_signal(int) {
  if (g_service != nullptr) g_service->stop_notifier().notify();  // eventfd write: async-signal-safe
}

}  // namespace

int main(int argc, char** argv) {
  using namespace bridge;
  try {
    core::Args args(argc, argv, {"help", "list-kernels"});
    if (args.has("help")) {
      std::cout << kUsage;
      return 0;
    }
    args.reject_unknown({"help", "list-kernels", "config", "broker", "slots", "device", "threads", "id", "log-level"});
    const auto& kernels = worker::KernelRegistry::global();
    if (args.has("list-kernels")) {
      for (const auto& name : kernels.names()) std::cout << name << "  " << kernels.find(name)->summary << "\n";
      return 0;
    }
    worker::WorkerOptions options;
    if (args.has("config")) options = worker::load_worker_options(args.get("config"));
    options.broker = args.get("broker", options.broker);
    options.device = args.get("device", options.device);
    options.id = args.get("id", options.id);
    options.log_level = args.get("log-level", options.log_level);
    if (args.has("slots")) options.slots = static_cast<std::uint32_t>(std::stoul(args.get("slots")));
    if (args.has("threads")) options.threads = static_cast<std::uint32_t>(std::stoul(args.get("threads")));
    options.validate();
    core::init_logging("worker", options.log_level);

    auto backend = std::make_unique<worker::CpuBackend>(worker::CpuBackend::Options{options.threads});
    worker::WorkerService service(options, std::move(backend), kernels);
    g_service = &service;
    std::signal(SIGINT, on_signal);
    std::signal(SIGTERM, on_signal);
    service.run();
    g_service = nullptr;
    return 0;
  } catch (const core::ConfigError& e) {
    std::fprintf(stderr, "bridge-worker: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bridge-worker: fatal: %s\n", e.what());
    return 1;
  }
}
