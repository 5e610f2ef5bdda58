// The plugin's one exported symbol (see bridge/worker/cuda_plugin.hpp).
#include "cuda_backend.hpp"

extern "C" __attribute__((visibility("default"))) bridge::worker::Backend* bridge_create_cuda_backend(
    const bridge::worker::CudaBackendOptions& options, std::string& error) {
  try {
    return bridge::worker::cuda::CudaBackend::create(options, error).release();
  } catch (const std::exception& e) {
    error = std::string("CUDA backend failed to start: ") + e.what();
    return nullptr;
  }
}
