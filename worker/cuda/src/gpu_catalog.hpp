#pragma once
// The GPU implementations of catalog kernels, by name. A kernel missing here runs on the CPU, and
// its results say so in fallback_reason.

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include "bridge/worker/backend.hpp"
#include "bridge/worker/caching_pool.hpp"

namespace bridge::worker::cuda {

/// One kernel launch on the device (a job, or one step of a pipeline): its inputs and outputs
/// already in device memory (nullptr where a tensor is empty), their host descriptions (shapes; the
/// bytes there are not current for a pipeline's intermediates), the params, the slot's stream and
/// cuBLAS handle, and the pool for scratch space.
struct GpuJob {
  std::span<const Tensor> host_inputs;
  const Params& params;
  std::vector<const void*> inputs;
  std::vector<void*> outputs;
  cudaStream_t stream = nullptr;
  cublasHandle_t cublas = nullptr;
  CachingPool& device_pool;
  std::vector<void*> scratch;  ///< returned to the pool once the job's stream has finished
};

/// cudaSuccess, or the first failure with what failed.
struct GpuStatus {
  cudaError_t error = cudaSuccess;
  std::string what;
  bool ok() const { return error == cudaSuccess; }
};

/// Enqueues the kernel's work on job.stream. The plan has been checked already (shapes, params).
using GpuKernelFn = GpuStatus (*)(GpuJob& job);

GpuKernelFn find_gpu_kernel(std::string_view name);
std::vector<std::string> gpu_kernel_names();

}  // namespace bridge::worker::cuda
