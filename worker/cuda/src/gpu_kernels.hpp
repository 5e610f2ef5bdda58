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
/// Sum of `n` floats into `*out` with CUB. Call with temp == nullptr to learn `temp_bytes`.
cudaError_t reduce_sum(void* temp, std::size_t& temp_bytes, const float* x, float* out, std::size_t n,
                       cudaStream_t stream);

}  // namespace bridge::worker::cuda
