#pragma once
/// @file CpuBackend: runs kernels' CPU implementations in a oneTBB arena.

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>

#include "bridge/worker/backend.hpp"
#include "bridge/worker/caching_pool.hpp"

namespace bridge::worker {

/// Thread model: every execution is enqueued into one tbb::task_arena of `threads` threads; a kernel's
/// own parallel loops run in the same arena, so jobs and their inner parallelism share the cores
/// without oversubscription. execute() never blocks. A small job of a bytes-bound kernel (at most
/// kInlineJobBytes in and out) runs on the caller's thread instead (run_inline()). Thread-safe.
class CpuBackend final : public Backend {
 public:
  /// The most bytes (inputs and outputs of every step) of a job run_inline() takes: a few
  /// microseconds of work for a bytes-bound kernel, about what a hand-off to another thread costs.
  static constexpr std::uint64_t kInlineJobBytes = 64 * 1024;
  /// What a step and an output tensor cost besides their bytes, in bytes' worth towards
  /// kInlineJobBytes: a job of many steps or many empty tensors is no small job (measured on the
  /// socket thread: a tiny job 10 us, one of 64 empty outputs 40 us, 17 steps of them 190 us).
  static constexpr std::uint64_t kInlineStepBytes = 4096;
  static constexpr std::uint64_t kInlineOutputBytes = 1024;

  struct Options {
    std::uint32_t threads = 0;                     ///< 0: every hardware thread
    std::uint64_t output_pool_bytes = 1ull << 30;  ///< cap of the pool of output buffers; 0: no pool
  };
  /// Outputs at least this large come from the pool: smaller ones come from malloc's heap, which
  /// reuses its memory anyway.
  static constexpr std::uint64_t kPooledOutputBytes = 256 * 1024;

  explicit CpuBackend(Options options);
  ~CpuBackend() override;

  const DeviceInfo& device() const override { return device_; }
  DeviceMetrics metrics() override;
  void execute(std::unique_ptr<Execution> execution, const Completion& done) override;
  bool run_inline(Execution& execution) override;
  bool runs_inline(const Execution& execution) const override;
  /// From a pool of buffers that outlive their jobs: fresh memory takes a page fault per 4 KiB page
  /// on its first write (a 64 MiB output took longer to fault in than to compute), a reused buffer
  /// none. Large blocks are backed by huge pages where the kernel allows it (madvise).
  Tensor allocate_output(const OutputSpec& spec) override;
  void wait_idle() override;

 private:
  void run(Execution& execution);  // on whichever thread: checks, allocates, runs, fills the status

  struct Arena;  // wraps tbb::task_arena; keeps oneTBB's headers out of this one
  std::unique_ptr<Arena> arena_;
  std::shared_ptr<CachingPool> output_pool_;  // null: no pool
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
