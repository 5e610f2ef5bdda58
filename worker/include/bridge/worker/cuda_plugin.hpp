#pragma once
/// @file The CUDA backend plugin's entry points, shared by bridge-worker (which loads the plugin with
/// dlopen) and the plugin itself (libbridge_cuda.so).
///
/// The boundary is versioned. Before anything else the loader asks the plugin, through `extern "C"`
/// functions with C types only, for its ABI version and build identity, and refuses a plugin whose
/// either differs from the worker's, naming both: a stale libbridge_cuda.so never loads silently.
/// It then asks for the plugin's GPU kernels and refuses one without a CPU twin in the worker's
/// catalog (the CPU is every GPU kernel's fallback). Only then does it call the create function,
/// which still passes C++ types (CudaBackendOptions, Backend): that is safe only between a worker
/// and a plugin of one build, which is exactly what the identity check admits.

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

/// The version of this boundary: the entry points below and every type that crosses it (Backend,
/// Execution and the KernelSpec it points to, CudaBackendOptions, Tensor). Raise it when any of them
/// changes. 2: Backend::runs_inline, KernelSpec::inline_bytes_per_row.
inline constexpr std::uint32_t kBackendAbiVersion = 2;

/// The build identity both sides compute from the same headers: the project's version, the
/// compiler, the C++ standard library and the sizes of the types that cross. Equal identities mean
/// one build, or builds whose crossing types agree.
std::string backend_build_id();

extern "C" {
/// `uint32_t bridge_backend_abi_version(void)`: kBackendAbiVersion of the plugin's build.
using BackendAbiVersionFn = std::uint32_t (*)();
/// `const char* bridge_backend_build_id(void)`: backend_build_id() of the plugin's build.
using BackendBuildIdFn = const char* (*)();
/// `const char* bridge_backend_gpu_kernels(void)`: the kernels with a GPU implementation, comma-separated.
using BackendGpuKernelsFn = const char* (*)();
}
inline constexpr const char* kBackendAbiVersionSymbol = "bridge_backend_abi_version";
inline constexpr const char* kBackendBuildIdSymbol = "bridge_backend_build_id";
inline constexpr const char* kBackendGpuKernelsSymbol = "bridge_backend_gpu_kernels";

/// Signature of the plugin's exported `bridge_create_cuda_backend`. Returns a backend for
/// `options.device`, or nullptr with `error` saying why (no driver, no such device, ...).
using CreateCudaBackendFn = Backend* (*)(const CudaBackendOptions& options, std::string& error);
inline constexpr const char* kCreateCudaBackendSymbol = "bridge_create_cuda_backend";
/// File name of the plugin.
inline constexpr const char* kCudaPluginFile = "libbridge_cuda.so";

/// Loads the plugin and creates a backend. Looks in `explicit_path` if set; else next to the
/// executable (build tree: cuda/; install: ../lib/gpubridge/), then the library search path.
/// Returns nullptr with `error` set when there is no plugin, a plugin of another ABI version or
/// build, one whose GPU kernel has no CPU twin, no CUDA runtime, or no usable device.
std::unique_ptr<Backend> load_cuda_backend(const std::string& explicit_path, const CudaBackendOptions& options,
                                           std::string& error);

}  // namespace bridge::worker
