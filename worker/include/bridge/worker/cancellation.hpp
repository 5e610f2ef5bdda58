#pragma once
/// @file Cancellation: a running job's stop request, from the worker's socket thread to its kernel.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>

#include "bridge/status.hpp"

namespace bridge::worker {

/// Shared by the thread that asks a job to stop (the worker's socket thread, on the broker's Cancel or
/// at the job's deadline) and the backend thread that runs it. Kernels see it through
/// KernelArgs::cancelled(): the CPU backend also binds it to the job's oneTBB task group, so a
/// parallel loop skips the chunks it has not started; pipelines stop between stages. Thread-safe.
class Cancellation {
 public:
  /// Asks the job to stop with `code` (CANCELLED or DEADLINE_EXCEEDED) and a message for the
  /// client. The first request wins; later ones change nothing. Cheap, never blocks on the kernel.
  void request(StatusCode code, std::string message);
  /// Whether a stop was requested. Cheap (one relaxed atomic load): kernels may call it per chunk.
  bool requested() const noexcept { return requested_.load(std::memory_order_relaxed); }
  /// The stop request as a status; OK if none.
  Status status() const;
  /// Sleeps for `duration`, or less if a stop is requested meanwhile; true if one was.
  bool wait_for(std::chrono::nanoseconds duration) const;
  /// Calls `hook` on request() (at once if one came already), until unbind(); the hook runs under
  /// this object's lock, so it must be cheap and must not call back into it. The CPU backend cancels
  /// the job's oneTBB task group this way.
  void bind(std::function<void()> hook);
  void unbind();
  /// The time the job may run until, set when it starts (its tenant's max_job_ms from then, which a
  /// job waiting for a slot has not begun to use); time_point::max() until then. The worker's socket
  /// thread stops the job when it passes, as at its deadline.
  void limit_run(std::chrono::steady_clock::time_point until) noexcept {
    run_limit_.store(until.time_since_epoch().count(), std::memory_order_relaxed);
  }
  std::chrono::steady_clock::time_point run_limit() const noexcept {
    return std::chrono::steady_clock::time_point(
        std::chrono::steady_clock::duration(run_limit_.load(std::memory_order_relaxed)));
  }

 private:
  std::atomic<std::chrono::steady_clock::rep> run_limit_{
      std::chrono::steady_clock::time_point::max().time_since_epoch().count()};
  mutable std::mutex mutex_;
  mutable std::condition_variable stopped_;
  std::atomic<bool> requested_{false};
  Status status_;                 // guarded by mutex_
  std::function<void()> hook_;    // guarded by mutex_
};

}  // namespace bridge::worker
