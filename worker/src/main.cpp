// bridge-worker: connects to a broker and runs catalog kernels for it.
#include <iostream>

#include <spdlog/spdlog.h>

#include "bridge/core/program.hpp"
#include "bridge/core/cli.hpp"
#include "bridge/core/logging.hpp"
#include "bridge/worker/backend_factory.hpp"
#include "bridge/worker/worker_service.hpp"

namespace {

constexpr const char* kAbout =
    R"(Connects to a GpuBridge broker and runs jobs on this machine. Flags override the config file
(config/worker.yaml documents every key). SIGINT/SIGTERM: finish jobs in flight, say goodbye, exit.)";

constexpr const char* kFooter = R"(
A broker with security: curve (the default) needs --key-file (this worker's NAME.key from bridgectl
keygen, enrolled in the broker's workers file) and --broker-key-file (the broker's .pub).
Exit status: 0 stopped cleanly, 1 a failure (a device that cannot be used, say), 2 a usage or configuration error.)";

}  // namespace

int main(int argc, char** argv) {
  bridge::core::use_huge_pages_for_large_blocks(argv);  // may run this program again, first thing
  using namespace bridge;
  CLI::App app(kAbout, "bridge-worker");
  app.footer(kFooter);
  std::string config;
  bool list_kernels = false;
  worker::WorkerOptions options;
  core::Overrides flags;
  app.add_option("--config", config, "the worker.yaml to read first");
  flags.add(app, "--broker", options.broker,
            "the broker's worker endpoint (tcp://HOST:PORT), or several brokers' separated by commas");
  flags.add(app, "--slots", options.slots, "jobs that run here at once");
  flags.add(app, "--prefetch", options.prefetch, "jobs the broker may send beyond slots, to wait here for one");
  flags.add(app, "--device", options.device, "auto, cpu or cuda:N");
  flags.add(app, "--threads", options.threads, "CPU threads for kernels (0: all cores)");
  flags.add(app, "--id", options.id, "this worker's id (default: HOSTNAME-PID-RANDOM)");
  flags.add(app, "--max-batch", options.max_batch, "most jobs per launch (1: no dynamic batching)");
  flags.add(app, "--max-delay-us", options.max_delay_us, "how long a job may wait for company in a batch");
  flags.add(app, "--cuda-plugin", options.cuda_plugin, "path of libbridge_cuda.so (default: beside the binary)");
  flags.add(app, "--metrics", options.metrics_listen, "HOST:PORT of /metrics, /healthz, /readyz");
  flags.add(app, "--key-file", options.key_file, "this worker's key pair (NAME.key)");
  flags.add(app, "--broker-key-file", options.broker_key_file, "the broker's public key (NAME.pub)");
  flags.add(app, "--log-level", options.log_level, "trace, debug, info, warn, error or off");
  flags.add(app, "--log-format", options.log_format, "text or json");
  app.add_flag("--list-kernels", list_kernels, "print the kernel catalog and exit");
  return core::run_cli(app, argc, argv, [&] {
    const auto& kernels = worker::KernelRegistry::global();
    if (list_kernels) {
      for (const auto& name : kernels.names()) std::cout << name << "  " << kernels.find(name)->summary << "\n";
      return 0;
    }
    if (!config.empty()) options = worker::load_worker_options(config);
    flags.apply();
    options.validate();
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
