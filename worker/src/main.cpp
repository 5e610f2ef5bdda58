// bridge-worker: connects to a broker and runs catalog kernels for it.
#include <iostream>

#include <spdlog/spdlog.h>

#include "bridge/core/args.hpp"
#include "bridge/core/logging.hpp"
#include "bridge/core/program.hpp"
#include "bridge/worker/backend_factory.hpp"
#include "bridge/worker/worker_service.hpp"

namespace {

constexpr const char* kUsage = R"(usage: bridge-worker [--config FILE] [--broker ENDPOINT] [--slots N] [--device auto|cpu|cuda:N]
                     [--threads N] [--id ID] [--max-batch N] [--max-delay-us N] [--cuda-plugin PATH]
                     [--metrics HOST:PORT] [--key-file FILE] [--broker-key-file FILE]
                     [--log-level LEVEL] [--log-format text|json] [--list-kernels]

Connects to a GpuBridge broker and runs jobs on this machine. Flags override the config file
(config/worker.yaml documents every key). A broker with security: curve (the default) needs
--key-file (this worker's NAME.key from bridgectl keygen, enrolled in the broker's workers file)
and --broker-key-file (the broker's .pub). SIGINT/SIGTERM: finish jobs in flight, say goodbye, exit.
)";

}  // namespace

int main(int argc, char** argv) {
  using namespace bridge;
  return core::run_program("bridge-worker", [&] {
    core::Args args(argc, argv, {"help", "list-kernels"});
    if (args.has("help")) {
      std::cout << kUsage;
      return 0;
    }
    args.reject_unknown({"help", "list-kernels", "config", "broker", "slots", "device", "threads", "id", "log-level", "log-format", "cuda-plugin",
                        "max-batch", "max-delay-us", "metrics", "key-file", "broker-key-file"});
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
    options.cuda_plugin = args.get("cuda-plugin", options.cuda_plugin);
    options.log_level = args.get("log-level", options.log_level);
    options.slots = args.get_uint("slots", options.slots);
    options.threads = args.get_uint("threads", options.threads);
    options.max_batch = args.get_uint("max-batch", options.max_batch);
    options.max_delay_us = args.get_uint("max-delay-us", options.max_delay_us);
    options.metrics_listen = args.get("metrics", options.metrics_listen);
    options.key_file = args.get("key-file", options.key_file);
    options.broker_key_file = args.get("broker-key-file", options.broker_key_file);
    options.validate();
    options.log_format = args.get("log-format", options.log_format);
    core::init_logging("worker", options.log_level, options.log_format);

    std::string notice;
    auto backend = worker::make_backend(options, notice);
    if (!notice.empty()) spdlog::info("{}", notice);
    worker::WorkerService service(options, std::move(backend), kernels);
    core::stop_on_signals(service.stop_notifier());
    service.run();
    core::clear_stop_signals();
    return 0;
  });
}
