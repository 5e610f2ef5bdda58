#pragma once
/// @file The CUDA backend plugin's entry point, shared by bridge-worker (which loads the plugin with
/// dlopen) and the plugin itself (libbridge_cuda.so). Both are built together by this project with
/// the same compiler and standard library, so C++ types may cross the boundary.

#include <cstdint>
#include <memory>
#include <string>

#include "bridge/worker/backend.hpp"
#include "bridge/worker/circuit_breaker.hpp"

namespace bridge::worker {

struct CudaBackendOptions {
  int device = 0;                          ///< CUDA device ordinal
  std::uint32_t slots = 4;                 ///< one CUDA stream (and cuBLAS handle) per slot
  std::uint64_t device_pool_bytes = 0;     ///< cap of the device memory pool; 0 = 90% of the device's memory
  std::uint64_t pinned_pool_bytes = 1ull << 30;  ///< cap of pooled pinned host memory
  CircuitBreaker::Options breaker;
  /// Runs what the GPU cannot (no GPU implementation, device failure, circuit open). Required.
  std::shared_ptr<Backend> cpu;
};

/// Signature of the plugin's exported `bridge_create_cuda_backend`. Returns a backend for
/// `options.device`, or nullptr with `error` saying why (no driver, no such device, ...).
using CreateCudaBackendFn = Backend* (*)(const CudaBackendOptions& options, std::string& error);
inline constexpr const char* kCreateCudaBackendSymbol = "bridge_create_cuda_backend";
/// File name of the plugin.
inline constexpr const char* kCudaPluginFile = "libbridge_cuda.so";

/// Loads the plugin and creates a backend. Looks in `explicit_path` if set; else next to the
/// executable (build tree: cuda/; install: ../lib/gpubridge/), then the library search path.
/// Returns nullptr with `error` set when there is no plugin, no CUDA runtime, or no usable device.
std::unique_ptr<Backend> load_cuda_backend(const std::string& explicit_path, const CudaBackendOptions& options,
                                           std::string& error);

}  // namespace bridge::worker
