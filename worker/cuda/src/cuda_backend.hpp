#pragma once
// CudaBackend: runs catalog kernels on one CUDA device, with the CPU backend as its fallback.

#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include "bridge/worker/caching_pool.hpp"
#include "bridge/worker/cuda_plugin.hpp"
#include "cuda_handle.hpp"
#include "gpu_catalog.hpp"
#include "nvml.hpp"

namespace bridge::worker::cuda {

/// Thread model: one host thread per slot, each owning a CUDA stream, a cuBLAS handle bound to it and
/// timing events. A slot thread stages a job's inputs through pinned buffers, enqueues the copies and
/// kernels on its stream and waits on the stream's last event only, so slots overlap: one job's
/// copies run while another's kernels do. execute() only queues and returns; the worker's socket
/// thread never waits on the GPU.
///
/// Fallback: a kernel without a GPU implementation, a job whose device memory cannot be had (pool cap
/// or device out of memory), or a device failure (launch failure, lost device) runs on the CPU
/// backend, and the result says why in fallback_reason. Device failures feed a circuit breaker.
/// While it is open, every job goes to the CPU and heartbeats report gpu_disabled.
class CudaBackend final : public Backend {
 public:
  /// nullptr with `error` set if the device cannot be used.
  static std::unique_ptr<CudaBackend> create(const CudaBackendOptions& options, std::string& error);
  ~CudaBackend() override;

  const DeviceInfo& device() const override { return device_; }
  DeviceMetrics metrics() override;
  void execute(std::unique_ptr<Execution> execution, const Completion& done) override;
  void wait_idle() override;
  Tensor allocate_output(const OutputSpec& spec) override;

 private:
  /// Its handles are destroyed in reverse order, the cuBLAS context before the stream it is bound
  /// to, after ~CudaBackend has made the device current.
  struct Slot {
    Stream stream;
    CublasHandle cublas;
    Event start, done;
    /// marks[0]: inputs uploaded; marks[i + 1]: step i computed. Grown to the longest pipeline seen.
    std::vector<Event> marks;
  };
  struct Task {
    std::unique_ptr<Execution> execution;
    Completion done;
  };

  struct Token {};  ///< only create() makes one: it must initialise() what it makes

 public:
  CudaBackend(Token, const CudaBackendOptions& options);

 private:
  bool initialise(std::string& error);
  void slot_loop(Slot& slot);
  void run(Task task, Slot& slot);
  GpuStatus run_on_gpu(Execution& execution, Slot& slot, const std::vector<GpuKernelFn>& kernels);
  void fall_back(Task task, std::string reason);
  void finished();

  CudaBackendOptions options_;
  DeviceInfo device_;
  std::shared_ptr<CachingPool> device_pool_;  // shared with actors' device copies, which hold blocks
  std::shared_ptr<CachingPool> pinned_pool_;  // shared with pinned output tensors, which may outlive jobs
  std::unique_ptr<Nvml> nvml_;
  CircuitBreaker breaker_;
  std::vector<Slot> slots_;
  std::vector<std::thread> threads_;

  std::mutex mutex_;
  std::condition_variable work_;
  std::condition_variable idle_;
  std::deque<Task> queue_;     // guarded by mutex_
  std::uint32_t running_ = 0;  // queued + executing, guarded by mutex_
  bool stopping_ = false;      // guarded by mutex_
};

}  // namespace bridge::worker::cuda
