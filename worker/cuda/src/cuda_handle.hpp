#pragma once
// CudaHandle: owns one CUDA runtime or cuBLAS handle (a stream, an event, a cuBLAS context) and
// destroys it exactly once, so that no handle is freed by hand. It converts to the raw handle for
// the API calls that use it; out() hands the create call somewhere to write a new one.

#include <utility>

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

namespace bridge::worker::cuda {

template <class Handle, auto Destroy>
class CudaHandle {
 public:
  CudaHandle() = default;
  CudaHandle(const CudaHandle&) = delete;
  CudaHandle& operator=(const CudaHandle&) = delete;
  CudaHandle(CudaHandle&& other) noexcept : handle_(std::exchange(other.handle_, nullptr)) {}
  CudaHandle& operator=(CudaHandle&& other) noexcept {
    if (this != &other) {
      reset();
      handle_ = std::exchange(other.handle_, nullptr);
    }
    return *this;
  }
  ~CudaHandle() { reset(); }

  operator Handle() const { return handle_; }  // NOLINT: the raw handle, for the calls that take it
  /// Destroys the handle held, if any, and returns where the create call writes the new one.
  Handle* out() {
    reset();
    return &handle_;
  }
  void reset() {
    if (handle_ != nullptr) Destroy(handle_);
    handle_ = nullptr;
  }

 private:
  Handle handle_ = nullptr;
};

using Stream = CudaHandle<cudaStream_t, cudaStreamDestroy>;
using Event = CudaHandle<cudaEvent_t, cudaEventDestroy>;
using CublasHandle = CudaHandle<cublasHandle_t, cublasDestroy>;

}  // namespace bridge::worker::cuda
