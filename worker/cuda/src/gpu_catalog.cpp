#include "gpu_catalog.hpp"

#include <algorithm>
#include <utility>
#include <vector>

#include "gpu_kernels.hpp"
#include "bridge/worker/image_math.hpp"

namespace bridge::worker::cuda {
namespace {

GpuStatus check(cudaError_t error, const char* what) {
  if (error == cudaSuccess) return {};
  return {error, std::string(what) + ": " + cudaGetErrorName(error) + " (" + cudaGetErrorString(error) + ")"};
}

std::size_t elements(const Tensor& t) { return static_cast<std::size_t>(t.element_count()); }
const float* in_f32(GpuJob& job, std::size_t i) { return static_cast<const float*>(job.inputs[i]); }
float* out_f32(GpuJob& job, std::size_t i) { return static_cast<float*>(job.outputs[i]); }

const double* param(const GpuJob& job, const char* name) {
  for (const auto& [key, value] : job.params)
    if (key == name) return &value;
  return nullptr;
}

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
  const double alpha = *param(job, "alpha");  // present and finite: checked by the kernel's plan
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
  auto s =
      check(reduce_sum(nullptr, temp_bytes, in_f32(job, 0), out_f32(job, 0), n, job.stream), "reduce_sum size query");
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
  if (k == 0)
    return check(cudaMemsetAsync(job.outputs[0], 0, std::size_t(m) * n * sizeof(float), job.stream), "matmul zero");
  // cuBLAS is column-major: a row-major C = A x B is the column-major C^T = B^T x A^T, which is what
  // passing B first computes, with no transposition of the data.
  const float one = 1.0f, zero = 0.0f;
  const cublasStatus_t status = cublasSgemm(job.cublas, CUBLAS_OP_N, CUBLAS_OP_N, n, m, k, &one, in_f32(job, 1), n,
                                            in_f32(job, 0), k, &zero, out_f32(job, 0), n);
  if (status == CUBLAS_STATUS_SUCCESS) return {};
  return {status == CUBLAS_STATUS_ALLOC_FAILED ? cudaErrorMemoryAllocation : cudaErrorLaunchFailure,
          std::string("cublasSgemm: ") + cublasGetStatusString(status)};
}

// Copies a small host table (taps, weights) into pooled device scratch on the job's stream. Pageable
// source: the runtime has staged the bytes by the time cudaMemcpyAsync returns, so `host` may go.
template <class T>
GpuStatus upload_table(GpuJob& job, const std::vector<T>& host, const T*& device, const char* what) {
  const std::size_t bytes = std::max<std::size_t>(host.size() * sizeof(T), 1);
  void* p = job.device_pool.acquire(bytes);
  if (p == nullptr) return {cudaErrorMemoryAllocation, std::string(what) + ": device memory pool exhausted"};
  job.scratch.push_back(p);
  device = static_cast<const T*>(p);
  if (host.empty()) return {};
  return check(cudaMemcpyAsync(p, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice, job.stream), what);
}

// Geometry of an image input [H,W] or [H,W,C] (checked by the kernel's plan).
struct Image {
  std::int64_t h, w, c;
};
Image image_of(const Tensor& t) { return {t.shape()[0], t.shape()[1], t.shape().size() == 3 ? t.shape()[2] : 1}; }

GpuStatus resize(GpuJob& job) {
  const Image in = image_of(job.host_inputs[0]);
  const auto out_h = static_cast<std::int64_t>(*param(job, "height"));
  const auto out_w = static_cast<std::int64_t>(*param(job, "width"));
  static_assert(sizeof(ResizeTap) == sizeof(image::BilinearTap), "tap layouts must match");
  std::vector<ResizeTap> rows, cols;
  for (const auto& t : image::bilinear_taps(in.h, out_h)) rows.push_back({t.lo, t.hi, t.weight});
  for (const auto& t : image::bilinear_taps(in.w, out_w)) cols.push_back({t.lo, t.hi, t.weight});
  const ResizeTap *d_rows = nullptr, *d_cols = nullptr;
  if (auto s = upload_table(job, rows, d_rows, "resize row taps"); !s.ok()) return s;
  if (auto s = upload_table(job, cols, d_cols, "resize column taps"); !s.ok()) return s;
  return check(launch_resize(in_f32(job, 0), out_f32(job, 0), in.w, out_h, out_w, in.c, d_rows, d_cols, job.stream),
               "resize launch");
}

GpuStatus blur(GpuJob& job) {
  const Image im = image_of(job.host_inputs[0]);
  const std::vector<float> weights = image::gaussian_weights(*param(job, "sigma"));
  const auto radius = static_cast<std::int64_t>(weights.size() / 2);
  const float* d_weights = nullptr;
  if (auto s = upload_table(job, weights, d_weights, "blur weights"); !s.ok()) return s;
  const std::size_t bytes = static_cast<std::size_t>(im.h * im.w * im.c) * sizeof(float);
  if (bytes == 0) return {};
  void* rows = job.device_pool.acquire(bytes);  // the horizontal pass's result
  if (rows == nullptr) return {cudaErrorMemoryAllocation, "blur scratch: device memory pool exhausted"};
  job.scratch.push_back(rows);
  auto* mid = static_cast<float*>(rows);
  if (auto s = check(launch_blur_pass(in_f32(job, 0), mid, im.h, im.w, im.c, d_weights, radius, false, job.stream),
                     "blur horizontal pass");
      !s.ok())
    return s;
  return check(launch_blur_pass(mid, out_f32(job, 0), im.h, im.w, im.c, d_weights, radius, true, job.stream),
               "blur vertical pass");
}

GpuStatus normalize(GpuJob& job) {
  const Tensor& x = job.host_inputs[0];
  const auto c = static_cast<std::size_t>(x.shape().back());
  const double* scale = param(job, "scale");
  const double* shift = param(job, "shift");
  const bool per_channel = job.inputs.size() == 3;
  return check(launch_normalize(in_f32(job, 0), out_f32(job, 0), elements(x), c, per_channel ? in_f32(job, 1) : nullptr,
                                per_channel ? in_f32(job, 2) : nullptr, scale ? static_cast<float>(*scale) : 1.0f,
                                shift ? static_cast<float>(*shift) : 0.0f, job.stream),
               "normalize launch");
}

const std::pair<const char*, GpuKernelFn> kKernels[] = {
    {"blur", blur},     {"matmul", matmul},   {"normalize", normalize},   {"passthrough", passthrough},
    {"reduce_sum", reduce_sum_kernel}, {"resize", resize}, {"saxpy", saxpy}, {"softmax", softmax},
    {"vector_add", vector_add},
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
