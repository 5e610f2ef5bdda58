#pragma once
/// @file The kernel API: what a catalog kernel declares, and how it registers itself.
///
/// Adding a kernel is a one-file change: write worker/src/kernels/NAME.cpp with a plan function
/// (validate inputs/params, declare outputs), a CPU implementation, and
/// `BRIDGE_REGISTER_KERNEL(make_spec)`; list the file in worker/CMakeLists.txt. docs/kernels.md
/// describes every kernel's inputs, params and outputs.

#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "bridge/status.hpp"
#include "bridge/tensor.hpp"
#include "bridge/worker/cancellation.hpp"

namespace bridge::worker {

/// Named scalar parameters of a job, in the order sent.
using Params = std::vector<std::pair<std::string, double>>;

/// What a kernel sees of a job. Valid for the duration of the call it is passed to.
struct KernelArgs {
  std::span<const Tensor> inputs;
  const Params* params = nullptr;
  /// The job's stop request (null in plan(), and where nothing can stop the job). A kernel that
  /// loops for long without tbb::parallel_for (whose chunks stop by themselves) checks cancelled().
  const Cancellation* cancel = nullptr;

  /// The value of a param, or nullptr if absent.
  const double* find_param(std::string_view name) const;
  /// Whether the job was asked to stop; its outputs are then discarded, so the kernel may return early.
  bool cancelled() const { return cancel != nullptr && cancel->requested(); }
};

/// An output a kernel will produce, declared before it runs so that the worker can allocate it.
struct OutputSpec {
  std::string name;
  DType dtype = DType::kF32;
  Shape shape;
  /// Set by prepare_execution(): false when the kernel writes every element of it, so that its
  /// storage needs no zeroing (KernelSpec::writes_every_output).
  bool zero_fill = true;
};

/// Validates inputs and params; on success fills `outputs`. Errors are INVALID_ARGUMENT with a
/// message naming the input or param and what is wrong with it. Must not touch tensor data: a
/// pipeline's later steps are planned on descriptors of the earlier outputs, which hold no bytes yet.
/// Declared output sizes are checked against the worker's limits before anything is allocated.
using PlanFn = Status (*)(const KernelArgs& args, std::vector<OutputSpec>& outputs);

/// Computes `outputs` (allocated per plan, zero-filled) on the CPU. Called inside the worker's TBB
/// arena, so it may use tbb::parallel_for. Only called after plan() succeeded on the same args.
using CpuFn = void (*)(const KernelArgs& args, std::span<Tensor> outputs);

struct KernelSpec {
  std::string name;     ///< catalog name, [a-z0-9_]+
  std::string summary;  ///< one line: inputs -> outputs, for bridgectl and docs
  PlanFn plan = nullptr;
  CpuFn run_cpu = nullptr;
  /// The kernel treats a new leading axis as independent problems: run on inputs stacked to
  /// [B, ...], it gives the B results stacked the same way. Such jobs may share one launch
  /// (dynamic batching, batcher.hpp).
  bool batchable = false;
  /// The names of the params it reads; any other param is refused (INVALID_ARGUMENT naming it).
  std::vector<std::string> params = {};
  /// It writes every element of every output, whatever its inputs: its outputs get storage that is
  /// not zeroed first. Storage may be reused from another tenant's job, so a kernel that leaves any
  /// element unwritten (or accumulates into its outputs) must leave this false.
  bool writes_every_output = false;
  /// Its time is a few nanoseconds per byte it reads and writes, with no other cost (element-wise
  /// maps, reductions): a small job of it runs on the worker's socket thread, without a hand-off
  /// to the backend's threads (CpuBackend::run_inline).
  bool bytes_bound = false;
  /// A bytes_bound kernel's cost per row besides its bytes (softmax: a maximum, a sum and a division
  /// for each row along the last axis), in bytes' worth: each row of its first output counts this
  /// much more towards CpuBackend::kInlineJobBytes, so that many short rows do not hold the socket thread.
  std::uint32_t inline_bytes_per_row = 0;
};

/// The catalog of kernels this worker binary was built with. Filled during static initialisation by
/// BRIDGE_REGISTER_KERNEL, read-only afterwards, so lookups are safe from any thread.
class KernelRegistry {
 public:
  static KernelRegistry& global();

  /// Adds a kernel; throws std::logic_error on a duplicate or incomplete spec (a build defect).
  void add(KernelSpec spec);
  const KernelSpec* find(std::string_view name) const;
  /// Sorted names.
  std::vector<std::string> names() const;

 private:
  std::vector<KernelSpec> kernels_;
};

struct KernelRegistrar {
  explicit KernelRegistrar(KernelSpec (*make)()) { KernelRegistry::global().add(make()); }
};

}  // namespace bridge::worker

#define BRIDGE_KERNEL_CONCAT_(a, b) a##b
#define BRIDGE_KERNEL_CONCAT(a, b) BRIDGE_KERNEL_CONCAT_(a, b)
/// Registers the KernelSpec returned by `factory` in KernelRegistry::global() at start-up.
#define BRIDGE_REGISTER_KERNEL(factory) \
  static const ::bridge::worker::KernelRegistrar BRIDGE_KERNEL_CONCAT(bridge_kernel_registrar_, __LINE__){factory}
