#pragma once
// Launchers of the hand-written CUDA kernels (gpu_kernels.cu). Each enqueues work on `stream` and
// returns the launch status; none synchronises.

#include <cstddef>
#include <cstdint>

#include <cuda_runtime_api.h>

namespace bridge::worker::cuda {

cudaError_t launch_vector_add(const float* a, const float* b, float* c, std::size_t n, cudaStream_t stream);
cudaError_t launch_saxpy(float alpha, const float* x, const float* y, float* out, std::size_t n, cudaStream_t stream);
/// Row-wise softmax of a [rows, cols] matrix.
cudaError_t launch_softmax_rows(const float* x, float* y, std::size_t rows, std::size_t cols, cudaStream_t stream);
/// One axis of a bilinear resize: output index i reads lo and hi, hi weighted by `weight`. Same
/// layout as image::BilinearTap (bridge/worker/image_math.hpp), which fills it.
struct ResizeTap {
  std::int64_t lo, hi;
  float weight;
};
/// Bilinear resize of a [in_h, in_w, c] image to [out_h, out_w, c]; `rows` and `cols` (device
/// memory) hold out_h and out_w taps.
cudaError_t launch_resize(const float* src, float* dst, std::int64_t in_w, std::int64_t out_h, std::int64_t out_w,
                          std::int64_t c, const ResizeTap* rows, const ResizeTap* cols, cudaStream_t stream);
/// One pass of a separable blur of a [h, w, c] image along rows (`vertical` false) or columns, with
/// 2 * radius + 1 weights (device memory); edges clamp.
cudaError_t launch_blur_pass(const float* src, float* dst, std::int64_t h, std::int64_t w, std::int64_t c,
                             const float* weights, std::int64_t radius, bool vertical, cudaStream_t stream);
/// out[i] = x[i] * scale[i % c] + shift[i % c]; with scale/shift null, the uniform values instead.
cudaError_t launch_normalize(const float* x, float* out, std::size_t n, std::size_t c, const float* scale,
                             const float* shift, float uniform_scale, float uniform_shift, cudaStream_t stream);
/// Sum of `n` floats into `*out` with CUB. Call with temp == nullptr to learn `temp_bytes`.
cudaError_t reduce_sum(void* temp, std::size_t& temp_bytes, const float* x, float* out, std::size_t n,
                       cudaStream_t stream);

}  // namespace bridge::worker::cuda
