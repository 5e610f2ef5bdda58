#pragma once
// Shared by the CUDA backend tests: where the plugin is, and running one job on a backend.

#include <cstdlib>
#include <future>
#include <string>

#include "bridge/worker/backend.hpp"
#include "bridge/worker/cuda_plugin.hpp"

namespace bridge::testing {

/// $BRIDGE_CUDA_PLUGIN (set by scripts/gpu-verify on the GPU machine) or the plugin of this build.
inline std::string cuda_plugin_path() {
  const char* env = std::getenv("BRIDGE_CUDA_PLUGIN");
  return env != nullptr ? env : BRIDGE_TEST_CUDA_PLUGIN;
}

/// Plans every step of `execution` (kernel, params, inputs and `then` set) and allocates its outputs
/// as the worker does; runs it on `backend` and waits for it.
inline std::unique_ptr<worker::Execution> run_execution(worker::Backend& backend,
                                                        std::unique_ptr<worker::Execution> execution) {
  for (std::size_t i = 0; i < execution->step_count(); ++i) {
    std::vector<worker::OutputSpec> specs;
    Status planned = execution->step_kernel(i).plan(
        worker::KernelArgs{execution->step_inputs(i), &execution->step_params(i)}, specs);
    if (!planned.is_ok()) {
      execution->status = planned;
      return execution;
    }
    auto& outputs = i == 0 ? execution->outputs : execution->then[i - 1].outputs;
    for (const auto& spec : specs) outputs.push_back(backend.allocate_output(spec));
  }
  std::promise<std::unique_ptr<worker::Execution>> done;
  auto future = done.get_future();
  backend.execute(std::move(execution),
                  [&done](std::unique_ptr<worker::Execution> e) { done.set_value(std::move(e)); });
  return future.get();
}

/// Plans and runs one job on `backend` as the worker does, and waits for it.
inline std::unique_ptr<worker::Execution> run_job(worker::Backend& backend, const std::string& kernel,
                                                  std::vector<Tensor> inputs, worker::Params params = {}) {
  auto execution = std::make_unique<worker::Execution>();
  execution->kernel = worker::KernelRegistry::global().find(kernel);
  execution->inputs = std::move(inputs);
  execution->params = std::move(params);
  return run_execution(backend, std::move(execution));
}

}  // namespace bridge::testing
