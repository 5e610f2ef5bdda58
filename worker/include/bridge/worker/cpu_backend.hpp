#pragma once
/// @file CpuBackend: runs kernels' CPU implementations in a oneTBB arena.

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>

#include "bridge/worker/backend.hpp"

namespace bridge::worker {

/// Thread model: every execution is enqueued into one tbb::task_arena of `threads` threads; a kernel's
/// own parallel loops run in the same arena, so jobs and their inner parallelism share the cores
/// without oversubscription. execute() never blocks. Thread-safe.
class CpuBackend final : public Backend {
 public:
  struct Options {
    std::uint32_t threads = 0;  ///< 0: every hardware thread
  };

  explicit CpuBackend(Options options);
  ~CpuBackend() override;

  const DeviceInfo& device() const override { return device_; }
  DeviceMetrics metrics() override;
  void execute(std::unique_ptr<Execution> execution, const Completion& done) override;
  void wait_idle() override;

 private:
  struct Arena;  // wraps tbb::task_arena; keeps oneTBB's headers out of this one
  std::unique_ptr<Arena> arena_;
  DeviceInfo device_;
  std::atomic<std::uint32_t> running_{0};
  std::mutex idle_mutex_;
  std::condition_variable idle_;
  // /proc/stat counters at the previous metrics() call, for utilisation between heartbeats.
  std::uint64_t last_busy_ = 0;
  std::uint64_t last_total_ = 0;
};

/// Runs one execution's kernel on the calling thread (inside a TBB arena if the kernel is to use
/// one) and fills status and compute time. The outputs must be allocated and zero-filled
/// (prepare_execution()). Stops between steps and chunks when the execution's cancel is requested,
/// and then ends with its status. Shared with the tests.
void run_on_cpu(Execution& execution);

}  // namespace bridge::worker
