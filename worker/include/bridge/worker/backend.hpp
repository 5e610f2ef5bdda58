#pragma once
/// @file Backend: where a worker runs kernels (the CPU on oneTBB; CUDA as a plugin, docs/architecture.md).

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "bridge/fleet.hpp"
#include "bridge/worker/cancellation.hpp"
#include "bridge/worker/kernel.hpp"

namespace bridge::worker {

/// A backend's copy of an actor's resident tensor in its own device memory. The worker keeps one
/// per resident tensor of an activation and hands it to every call that names the tensor; a GPU
/// backend fills it on first use and reuses it afterwards, so the tensor crosses the bus once per
/// activation. The CPU backend leaves it empty. Used by one call at a time (an actor's calls take turns).
struct DeviceCopy {
  std::mutex mutex;
  std::shared_ptr<void> buffer;  ///< device memory; its deleter gives it back to the backend
};

/// A pipeline step after the first kernel: it runs on the outputs of the step before it.
struct Step {
  const KernelSpec* kernel = nullptr;
  Params params;
  std::vector<OutputSpec> planned;  ///< what plan() declared; allocated by prepare_execution()
  std::vector<Tensor> outputs;
};

/// One job on its way through a backend. The service fills the inputs and plans the outputs; the
/// backend allocates them (prepare_execution(), on its own thread: the socket thread never does
/// work in proportion to a job's bytes) and fills the status and timings. Owned by whoever holds
/// the unique_ptr.
///
/// A plain job is one kernel (`kernel`, `params`, `outputs`). A pipeline adds `then`: step i runs
/// on the outputs of step i-1, and the job's result is the last step's outputs (result()).
struct Execution {
  std::uint64_t dispatch_id = 0;
  std::uint64_t job_id = 0;  ///< the client's, for logs
  std::string tenant;        ///< for logs
  const KernelSpec* kernel = nullptr;
  std::vector<Tensor> inputs;
  /// Per input: the device copy of an actor's resident tensor, or null for a tensor sent with the
  /// job. Empty when no input is resident.
  std::vector<std::shared_ptr<DeviceCopy>> resident_copies;
  Params params;
  std::vector<OutputSpec> planned;  ///< what plan() declared; allocated by prepare_execution()
  std::vector<Tensor> outputs;
  std::vector<Step> then;
  std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();
  /// The longest it may run once started (its tenant's max_job_ms); 0: the deadline alone. The
  /// worker arms it on `cancel` when the job starts (Cancellation::limit_run).
  std::chrono::milliseconds max_run{0};
  /// Returned outputs of at most this many bytes go back inline, in the result's header (the
  /// request's inline_outputs); 0: none.
  std::uint32_t inline_outputs = 0;
  /// Set by the worker when the broker cancels the job or its deadline passes; checked by the backend
  /// before it starts, between pipeline steps, and by kernels between chunks.
  std::shared_ptr<Cancellation> cancel = std::make_shared<Cancellation>();

  Status status;                  ///< set by the backend
  const DeviceInfo* ran_on = nullptr;  ///< set by the backend: the device that produced the result
  std::string fallback_reason;    ///< set by a GPU backend that ran the job on the CPU instead
  std::uint64_t transfer_us = 0;  ///< set by the service (realignment) and the backend (device copies)
  std::uint64_t compute_us = 0;   ///< set by the backend: all steps together
  std::vector<std::uint64_t> step_compute_us;  ///< set by the backend for pipelines: one per step

  /// Dynamic batching: the jobs whose stacked inputs this execution runs (batcher.hpp); empty for a
  /// job of its own. `batch_size` is reported in each member's result.
  std::vector<std::unique_ptr<Execution>> members;
  std::uint32_t batch_size = 1;

  /// Actor calls: "<tenant>/<actor id>", and the names under which outputs are kept.
  std::string actor;
  std::vector<std::string> keep_outputs;
  std::uint64_t actor_version = 0;  ///< the activation's version when dispatched

  /// The tensors the client gets: the last step's outputs.
  std::vector<Tensor>& result() { return then.empty() ? outputs : then.back().outputs; }
  const std::vector<Tensor>& result() const { return then.empty() ? outputs : then.back().outputs; }
  std::size_t step_count() const { return 1 + then.size(); }
  const KernelSpec& step_kernel(std::size_t i) const { return i == 0 ? *kernel : *then[i - 1].kernel; }
  const Params& step_params(std::size_t i) const { return i == 0 ? params : then[i - 1].params; }
  std::span<const Tensor> step_inputs(std::size_t i) const { return i == 0 ? inputs : step_outputs(i - 1); }
  std::span<const Tensor> step_outputs(std::size_t i) const { return i == 0 ? outputs : then[i - 1].outputs; }
  std::span<Tensor> step_outputs(std::size_t i) { return i == 0 ? std::span(outputs) : std::span(then[i - 1].outputs); }
  std::vector<OutputSpec>& step_planned(std::size_t i) { return i == 0 ? planned : then[i - 1].planned; }
  const std::vector<OutputSpec>& step_planned(std::size_t i) const { return i == 0 ? planned : then[i - 1].planned; }
  KernelArgs step_args(std::size_t i) const { return {step_inputs(i), &step_params(i), cancel.get()}; }

  /// Frees what only the run needed (inputs, device copies, intermediate steps' outputs), keeping
  /// the result. Called on the backend's thread when the run ends, so that the worker's socket
  /// thread never spends time proportional to a job's bytes unmapping its memory.
  void release_working_memory();
};

/// Makes an execution ready to run, on the backend's thread: stacks a batch's inputs (batcher.hpp)
/// and allocates every step's planned outputs, zero-filled; the last step's through
/// `allocate_result` (pinned memory on a GPU worker). Steps whose outputs exist are left alone.
/// RESOURCE_EXHAUSTED when memory cannot be had.
Status prepare_execution(Execution& execution, const std::function<Tensor(const OutputSpec&)>& allocate_result);

/// The bytes of a tensor of this shape and dtype, and its extent: the bytes it would have with every
/// dimension of 0 counted as 1. Limits apply to the extent, so that a zero dimension does not let
/// the others grow without bound (a kernel may work or allocate in proportion to them: a channel
/// count, a row). False, both 0, if a dimension is negative or the product overflows 64 bits.
bool shape_bytes(const Shape& shape, DType dtype, std::uint64_t& bytes, std::uint64_t& extent);

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

  /// Storage for an output tensor, zero-filled unless `spec.zero_fill` is false (its kernel writes
  /// every element). A GPU backend returns pinned host memory so that device-to-host copies land in
  /// it directly.
  virtual Tensor allocate_output(const OutputSpec& spec) {
    return spec.zero_fill ? Tensor::zeros(spec.dtype, spec.shape, spec.name)
                          : Tensor::uninitialized(spec.dtype, spec.shape, spec.name);
  }
  /// Runs `execution` on the calling thread (the worker's socket thread) and returns true, when it
  /// is small enough that handing it to the backend's threads would cost more than running it;
  /// returns false, having done nothing, otherwise. The status and timings are filled as by execute().
  virtual bool run_inline(Execution& /*execution*/) { return false; }
  /// Whether run_inline() would take `execution`, without running it. The worker asks before a job
  /// waits in the dynamic batcher: a job run on the socket thread has no launch to share, and
  /// stacking it with others would only add copies.
  virtual bool runs_inline(const Execution& /*execution*/) const { return false; }
};

}  // namespace bridge::worker
