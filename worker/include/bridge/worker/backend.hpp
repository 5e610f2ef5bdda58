#pragma once
/// @file Backend: where a worker runs kernels (the CPU on oneTBB; CUDA as a plugin, docs/architecture.md).

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "bridge/fleet.hpp"
#include "bridge/worker/kernel.hpp"

namespace bridge::worker {

/// One job on its way through a backend. The service fills the inputs and allocates the outputs;
/// the backend fills the status and timings. Owned by whoever holds the unique_ptr.
struct Execution {
  std::uint64_t dispatch_id = 0;
  const KernelSpec* kernel = nullptr;
  std::vector<Tensor> inputs;
  Params params;
  std::vector<Tensor> outputs;
  std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();

  Status status;                  ///< set by the backend
  const DeviceInfo* ran_on = nullptr;  ///< set by the backend: the device that produced the result
  std::string fallback_reason;    ///< set by a GPU backend that ran the job on the CPU instead
  std::uint64_t transfer_us = 0;  ///< set by the service (realignment) and the backend (device copies)
  std::uint64_t compute_us = 0;   ///< set by the backend
};

class Backend {
 public:
  /// Receives each finished Execution; called from a backend thread, must be cheap and thread-safe.
  using Completion = std::function<void(std::unique_ptr<Execution>)>;

  virtual ~Backend() = default;

  /// The device this backend runs on, as reported in the worker's hello.
  virtual const DeviceInfo& device() const = 0;
  /// Current readings; unknown values are -1. Called by the service thread at heartbeat time.
  virtual DeviceMetrics metrics() = 0;
  /// Starts `execution` and returns at once; `done` is called exactly once when it has finished,
  /// failed, or found its deadline passed before it started.
  virtual void execute(std::unique_ptr<Execution> execution, const Completion& done) = 0;
  /// Blocks until every started execution has called its completion.
  virtual void wait_idle() = 0;

  /// Storage for an output tensor, zero-filled (CPU kernels accumulate into their outputs). A GPU
  /// backend returns pinned host memory so that device-to-host copies land in it directly.
  virtual Tensor allocate_output(const OutputSpec& spec) { return Tensor::zeros(spec.dtype, spec.shape, spec.name); }
};

}  // namespace bridge::worker
