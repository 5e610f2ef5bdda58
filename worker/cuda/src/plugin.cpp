// The plugin's exported entry points (bridge/worker/cuda_plugin.hpp); nothing else is exported
// (hidden visibility and plugin.map).
#include <cstdint>
#include <string>

#include "cuda_backend.hpp"

#define BRIDGE_PLUGIN_EXPORT extern "C" __attribute__((visibility("default")))

BRIDGE_PLUGIN_EXPORT std::uint32_t bridge_backend_abi_version() { return bridge::worker::kBackendAbiVersion; }

BRIDGE_PLUGIN_EXPORT const char* bridge_backend_build_id() {
  static const std::string id = bridge::worker::backend_build_id();
  return id.c_str();
}

BRIDGE_PLUGIN_EXPORT const char* bridge_backend_gpu_kernels() {
  static const std::string names = [] {
    std::string joined;
    for (const auto& name : bridge::worker::cuda::gpu_kernel_names()) joined += (joined.empty() ? "" : ",") + name;
    return joined;
  }();
  return names.c_str();
}

BRIDGE_PLUGIN_EXPORT bridge::worker::Backend* bridge_create_cuda_backend(
    const bridge::worker::CudaBackendOptions& options, std::string& error) {
  try {
    return bridge::worker::cuda::CudaBackend::create(options, error).release();
  } catch (const std::exception& e) {
    error = std::string("CUDA backend failed to start: ") + e.what();
    return nullptr;
  }
}
