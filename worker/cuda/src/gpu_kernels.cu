// Hand-written CUDA kernels: element-wise ops with grid-stride loops, row-wise softmax with one block
// per row and CUB block reductions, and the sum through CUB's device-wide reduction.
#include "gpu_kernels.hpp"

#include <cub/block/block_reduce.cuh>
#include <cub/device/device_reduce.cuh>

#include <cfloat>

namespace bridge::worker::cuda {
namespace {

constexpr int kThreads = 256;
// Enough blocks to fill any current GPU several times over; the grid-stride loop covers the rest.
constexpr std::size_t kMaxBlocks = 65535;

unsigned blocks_for(std::size_t n) {
  const std::size_t blocks = (n + kThreads - 1) / kThreads;
  return static_cast<unsigned>(blocks < kMaxBlocks ? blocks : kMaxBlocks);
}

__global__ void vector_add_kernel(const float* __restrict__ a, const float* __restrict__ b, float* __restrict__ c,
                                  std::size_t n) {
  for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < n;
       i += std::size_t(gridDim.x) * blockDim.x)
    c[i] = a[i] + b[i];
}

__global__ void saxpy_kernel(float alpha, const float* __restrict__ x, const float* __restrict__ y,
                             float* __restrict__ out, std::size_t n) {
  for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < n;
       i += std::size_t(gridDim.x) * blockDim.x)
    out[i] = alpha * x[i] + y[i];
}

__global__ void softmax_rows_kernel(const float* __restrict__ x, float* __restrict__ y, std::size_t cols) {
  using BlockReduce = cub::BlockReduce<float, kThreads>;
  __shared__ typename BlockReduce::TempStorage storage;
  __shared__ float row_max;
  __shared__ float row_sum;
  const float* in = x + blockIdx.x * cols;
  float* out = y + blockIdx.x * cols;

  float local_max = -FLT_MAX;
  for (std::size_t j = threadIdx.x; j < cols; j += blockDim.x) local_max = fmaxf(local_max, in[j]);
  const float block_max = BlockReduce(storage).Reduce(local_max, [](float a, float b) { return fmaxf(a, b); });
  if (threadIdx.x == 0) row_max = block_max;
  __syncthreads();

  float local_sum = 0.0f;
  for (std::size_t j = threadIdx.x; j < cols; j += blockDim.x) {
    const float e = expf(in[j] - row_max);
    out[j] = e;
    local_sum += e;
  }
  const float block_sum = BlockReduce(storage).Sum(local_sum);
  if (threadIdx.x == 0) row_sum = block_sum;
  __syncthreads();

  const float scale = 1.0f / row_sum;
  for (std::size_t j = threadIdx.x; j < cols; j += blockDim.x) out[j] *= scale;
}

// One thread per output element (grid-stride); the same float operations, in the same order, as the
// CPU version, so results agree to rounding.
__global__ void resize_kernel(const float* __restrict__ src, float* __restrict__ dst, std::int64_t in_w,
                              std::int64_t out_w, std::int64_t c, std::size_t n, const ResizeTap* __restrict__ rows,
                              const ResizeTap* __restrict__ cols) {
  for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < n;
       i += std::size_t(gridDim.x) * blockDim.x) {
    const std::int64_t k = static_cast<std::int64_t>(i) % c;
    const std::int64_t x = (static_cast<std::int64_t>(i) / c) % out_w;
    const std::int64_t y = static_cast<std::int64_t>(i) / (c * out_w);
    const ResizeTap ty = rows[y], tx = cols[x];
    const float* r0 = src + ty.lo * in_w * c;
    const float* r1 = src + ty.hi * in_w * c;
    const float top = r0[tx.lo * c + k] + tx.weight * (r0[tx.hi * c + k] - r0[tx.lo * c + k]);
    const float bottom = r1[tx.lo * c + k] + tx.weight * (r1[tx.hi * c + k] - r1[tx.lo * c + k]);
    dst[i] = top + ty.weight * (bottom - top);
  }
}

__global__ void blur_pass_kernel(const float* __restrict__ src, float* __restrict__ dst, std::int64_t h,
                                 std::int64_t w, std::int64_t c, std::size_t n, const float* __restrict__ weights,
                                 std::int64_t radius, bool vertical) {
  for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < n;
       i += std::size_t(gridDim.x) * blockDim.x) {
    const std::int64_t k = static_cast<std::int64_t>(i) % c;
    const std::int64_t x = (static_cast<std::int64_t>(i) / c) % w;
    const std::int64_t y = static_cast<std::int64_t>(i) / (c * w);
    float acc = 0;
    for (std::int64_t t = -radius; t <= radius; ++t) {
      const std::int64_t yy = vertical ? min(max(y + t, std::int64_t{0}), h - 1) : y;
      const std::int64_t xx = vertical ? x : min(max(x + t, std::int64_t{0}), w - 1);
      acc += weights[t + radius] * src[(yy * w + xx) * c + k];
    }
    dst[i] = acc;
  }
}

__global__ void normalize_kernel(const float* __restrict__ x, float* __restrict__ out, std::size_t n, std::size_t c,
                                 const float* __restrict__ scale, const float* __restrict__ shift, float uniform_scale,
                                 float uniform_shift) {
  for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < n;
       i += std::size_t(gridDim.x) * blockDim.x) {
    const std::size_t k = i % c;
    out[i] = x[i] * (scale ? scale[k] : uniform_scale) + (shift ? shift[k] : uniform_shift);
  }
}

}  // namespace

cudaError_t launch_resize(const float* src, float* dst, std::int64_t in_w, std::int64_t out_h, std::int64_t out_w,
                          std::int64_t c, const ResizeTap* rows, const ResizeTap* cols, cudaStream_t stream) {
  const auto n = static_cast<std::size_t>(out_h * out_w * c);
  if (n == 0) return cudaSuccess;
  resize_kernel<<<blocks_for(n), kThreads, 0, stream>>>(src, dst, in_w, out_w, c, n, rows, cols);
  return cudaGetLastError();
}

cudaError_t launch_blur_pass(const float* src, float* dst, std::int64_t h, std::int64_t w, std::int64_t c,
                             const float* weights, std::int64_t radius, bool vertical, cudaStream_t stream) {
  const auto n = static_cast<std::size_t>(h * w * c);
  if (n == 0) return cudaSuccess;
  blur_pass_kernel<<<blocks_for(n), kThreads, 0, stream>>>(src, dst, h, w, c, n, weights, radius, vertical);
  return cudaGetLastError();
}

cudaError_t launch_normalize(const float* x, float* out, std::size_t n, std::size_t c, const float* scale,
                             const float* shift, float uniform_scale, float uniform_shift, cudaStream_t stream) {
  if (n == 0 || c == 0) return cudaSuccess;
  normalize_kernel<<<blocks_for(n), kThreads, 0, stream>>>(x, out, n, c, scale, shift, uniform_scale, uniform_shift);
  return cudaGetLastError();
}

cudaError_t launch_vector_add(const float* a, const float* b, float* c, std::size_t n, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  vector_add_kernel<<<blocks_for(n), kThreads, 0, stream>>>(a, b, c, n);
  return cudaGetLastError();
}

cudaError_t launch_saxpy(float alpha, const float* x, const float* y, float* out, std::size_t n, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  saxpy_kernel<<<blocks_for(n), kThreads, 0, stream>>>(alpha, x, y, out, n);
  return cudaGetLastError();
}

cudaError_t launch_softmax_rows(const float* x, float* y, std::size_t rows, std::size_t cols, cudaStream_t stream) {
  if (rows == 0 || cols == 0) return cudaSuccess;
  // One block per row; grids may have up to 2^31-1 blocks in x.
  softmax_rows_kernel<<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(x, y, cols);
  return cudaGetLastError();
}

cudaError_t reduce_sum(void* temp, std::size_t& temp_bytes, const float* x, float* out, std::size_t n,
                       cudaStream_t stream) {
  return cub::DeviceReduce::Sum(temp, temp_bytes, x, out, static_cast<std::int64_t>(n), stream);
}

}  // namespace bridge::worker::cuda
