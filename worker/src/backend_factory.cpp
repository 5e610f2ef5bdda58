#include "bridge/worker/backend_factory.hpp"

#include <stdexcept>

#include "bridge/worker/cpu_backend.hpp"
#include "bridge/worker/cuda_plugin.hpp"

namespace bridge::worker {

std::shared_ptr<Backend> make_backend(const WorkerOptions& options, std::string& notice) {
  auto cpu = std::make_shared<CpuBackend>(
      CpuBackend::Options{.threads = options.threads, .output_pool_bytes = options.output_pool_bytes});
  const int device = options.cuda_device();
  if (device < 0) return cpu;  // device: cpu

  CudaBackendOptions cuda;
  cuda.device = device;
  cuda.slots = options.slots;
  cuda.device_pool_bytes = options.gpu_pool_bytes;
  cuda.pinned_pool_bytes = options.pinned_pool_bytes;
  cuda.breaker = {options.breaker_failures, std::chrono::milliseconds(options.breaker_window_ms),
                  std::chrono::milliseconds(options.breaker_cooldown_ms)};
  cuda.cpu = cpu;
  std::string why;
  std::unique_ptr<Backend> gpu = load_cuda_backend(options.cuda_plugin, cuda, why);
  if (gpu) return gpu;
  if (options.device != "auto") throw std::runtime_error("device " + options.device + " is not usable: " + why);
  notice = "no usable CUDA device (" + why + "); serving on the CPU";
  return cpu;
}

}  // namespace bridge::worker
