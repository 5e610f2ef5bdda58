#include "gpu_catalog.hpp"

#include <algorithm>
#include <utility>

#include "gpu_kernels.hpp"

namespace bridge::worker::cuda {
namespace {

GpuStatus check(cudaError_t error, const char* what) {
  if (error == cudaSuccess) return {};
  return {error, std::string(what) + ": " + cudaGetErrorName(error) + " (" + cudaGetErrorString(error) + ")"};
}

std::size_t elements(const Tensor& t) { return static_cast<std::size_t>(t.element_count()); }
const float* in_f32(GpuJob& job, std::size_t i) { return static_cast<const float*>(job.inputs[i]); }
float* out_f32(GpuJob& job, std::size_t i) { return static_cast<float*>(job.outputs[i]); }

GpuStatus passthrough(GpuJob& job) {
  // Device-to-device copies: the job still crosses the bus both ways, as any GPU job does.
  for (std::size_t i = 0; i < job.outputs.size(); ++i) {
    const std::size_t bytes = job.host_inputs[i].byte_size();
    if (bytes == 0) continue;
    auto s = check(cudaMemcpyAsync(job.outputs[i], job.inputs[i], bytes, cudaMemcpyDeviceToDevice, job.stream),
                   "passthrough copy");
    if (!s.ok()) return s;
  }
  return {};
}

GpuStatus vector_add(GpuJob& job) {
  return check(launch_vector_add(in_f32(job, 0), in_f32(job, 1), out_f32(job, 0), elements(job.host_inputs[0]),
                                 job.stream),
               "vector_add launch");
}

GpuStatus saxpy(GpuJob& job) {
  double alpha = 0;  // present and finite: checked by the kernel's plan
  for (const auto& [name, value] : job.params)
    if (name == "alpha") alpha = value;
  return check(launch_saxpy(static_cast<float>(alpha), in_f32(job, 0), in_f32(job, 1), out_f32(job, 0),
                            elements(job.host_inputs[0]), job.stream),
               "saxpy launch");
}

GpuStatus softmax(GpuJob& job) {
  const Tensor& x = job.host_inputs[0];
  const auto cols = static_cast<std::size_t>(x.shape().back());
  const std::size_t rows = cols == 0 ? 0 : elements(x) / cols;
  return check(launch_softmax_rows(in_f32(job, 0), out_f32(job, 0), rows, cols, job.stream), "softmax launch");
}

GpuStatus reduce_sum_kernel(GpuJob& job) {
  const std::size_t n = elements(job.host_inputs[0]);
  if (n == 0) return check(cudaMemsetAsync(job.outputs[0], 0, sizeof(float), job.stream), "reduce_sum zero");
  std::size_t temp_bytes = 0;
  auto s = check(reduce_sum(nullptr, temp_bytes, in_f32(job, 0), out_f32(job, 0), n, job.stream), "reduce_sum size query");
  if (!s.ok()) return s;
  void* temp = job.device_pool.acquire(std::max<std::size_t>(temp_bytes, 1));
  if (temp == nullptr) return {cudaErrorMemoryAllocation, "reduce_sum scratch: device memory pool exhausted"};
  job.scratch.push_back(temp);
  return check(reduce_sum(temp, temp_bytes, in_f32(job, 0), out_f32(job, 0), n, job.stream), "reduce_sum");
}

GpuStatus matmul(GpuJob& job) {
  const auto m = static_cast<int>(job.host_inputs[0].shape()[0]);
  const auto k = static_cast<int>(job.host_inputs[0].shape()[1]);
  const auto n = static_cast<int>(job.host_inputs[1].shape()[1]);
  if (m == 0 || n == 0) return {};
  if (k == 0) return check(cudaMemsetAsync(job.outputs[0], 0, std::size_t(m) * n * sizeof(float), job.stream), "matmul zero");
  // cuBLAS is column-major: a row-major C = A x B is the column-major C^T = B^T x A^T, which is what
  // passing B first computes, with no transposition of the data.
  const float one = 1.0f, zero = 0.0f;
  const cublasStatus_t status = cublasSgemm(job.cublas, CUBLAS_OP_N, CUBLAS_OP_N, n, m, k, &one, in_f32(job, 1), n,
                                            in_f32(job, 0), k, &zero, out_f32(job, 0), n);
  if (status == CUBLAS_STATUS_SUCCESS) return {};
  return {status == CUBLAS_STATUS_ALLOC_FAILED ? cudaErrorMemoryAllocation : cudaErrorLaunchFailure,
          std::string("cublasSgemm: ") + cublasGetStatusString(status)};
}

const std::pair<const char*, GpuKernelFn> kKernels[] = {
    {"matmul", matmul},         {"passthrough", passthrough}, {"reduce_sum", reduce_sum_kernel},
    {"saxpy", saxpy},           {"softmax", softmax},         {"vector_add", vector_add},
};

}  // namespace

GpuKernelFn find_gpu_kernel(std::string_view name) {
  for (const auto& [kernel, fn] : kKernels)
    if (name == kernel) return fn;
  return nullptr;
}

std::vector<std::string> gpu_kernel_names() {
  std::vector<std::string> names;
  for (const auto& [kernel, fn] : kKernels) names.emplace_back(kernel);
  return names;
}

}  // namespace bridge::worker::cuda
