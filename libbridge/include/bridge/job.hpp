#pragma once
/// @file What a client sends (JobRequest) and gets back (JobResult).

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "bridge/status.hpp"
#include "bridge/tensor.hpp"
#include "bridge/export.hpp"

namespace bridge {

/// Where a job may run; values match `bridge.wire.Placement`.
enum class Placement : std::uint8_t { kAny = 0, kPreferGpu = 1, kRequireGpu = 2, kCpuOnly = 3 };
/// "any", "prefer-gpu", "require-gpu", "cpu-only".
BRIDGE_API const char* placement_name(Placement placement);
BRIDGE_API bool parse_placement(std::string_view name, Placement& out);

/// Values match `bridge.wire.DeviceKind`.
enum class DeviceKind : std::uint8_t { kCpu = 0, kCuda = 1 };
BRIDGE_API const char* device_kind_name(DeviceKind kind);  // "cpu", "cuda"

/// A pipeline step after the first kernel: runs on the previous step's outputs (see Pipeline).
struct BRIDGE_API Stage {
  std::string kernel;
  std::map<std::string, double> params;
};

struct BRIDGE_API JobRequest {
  std::string kernel;                     ///< catalog name, e.g. "vector_add" (docs/kernels.md)
  std::vector<Tensor> inputs;             ///< positional; names are informational
  std::map<std::string, double> params;   ///< scalar parameters, e.g. {"alpha", 2.0} for saxpy
  std::string tenant;                     ///< empty: the client's default tenant
  std::string actor_id;                   ///< set for actor calls (use bridge::Actor rather than setting it)
  int priority = 0;                       ///< -128..127, higher first within a tenant
  Placement placement = Placement::kAny;
  std::chrono::milliseconds timeout{0};   ///< 0: the client's default timeout
  /// Pipeline: after `kernel`, each stage runs on the outputs of the one before, in one job on one
  /// worker (intermediates stay in device memory). Build with bridge::Pipeline.
  std::vector<Stage> stages;
  /// Actor calls: per input position, a non-empty name takes the actor's resident tensor of that
  /// name in place of inputs[i] (which is then not sent). Empty vector: every input is sent.
  std::vector<std::string> resident_inputs;
  /// Actor calls: output i is kept in the actor under keep_outputs[i] ("" or past the end: returned).
  std::vector<std::string> keep_outputs;
};

/// Builds pipeline jobs: Pipeline{}.then("resize", {{"height", 64}, {"width", 64}}).then("blur", {{"sigma", 1}})
/// .request({image}) runs resize, then blur on resize's output, as one job.
class BRIDGE_API Pipeline {
 public:
  Pipeline& then(std::string kernel, std::map<std::string, double> params = {}) {
    steps_.push_back({std::move(kernel), std::move(params)});
    return *this;
  }
  /// The job that runs every step on `inputs`; throws std::logic_error on an empty pipeline.
  JobRequest request(std::vector<Tensor> inputs) const;
  const std::vector<Stage>& steps() const { return steps_; }

 private:
  std::vector<Stage> steps_;
};

struct BRIDGE_API Timings {
  std::chrono::microseconds queued{0};    ///< waiting in the broker
  std::chrono::microseconds transfer{0};  ///< moving bytes to/from the device in the worker
  std::chrono::microseconds compute{0};   ///< running the kernel
  std::chrono::microseconds total{0};     ///< submit to result, measured by the client
};

struct BRIDGE_API StageTiming {
  std::string kernel;
  std::chrono::microseconds compute{0};
};

struct BRIDGE_API JobResult {
  std::uint64_t job_id = 0;
  Status status;                          ///< OK, or a code and a message that says what to fix
  std::vector<Tensor> outputs;
  std::string worker_id;                  ///< where it ran (empty if it never reached a worker)
  DeviceKind device_kind = DeviceKind::kCpu;
  std::string device_name;
  std::string fallback_reason;            ///< why a GPU-preferring job ran on a CPU
  Timings timings;
  std::chrono::milliseconds retry_after{0};  ///< with RESOURCE_EXHAUSTED / QUEUE_FULL
  int attempts = 0;                       ///< dispatches it took (>1 after a worker was lost)
  std::vector<StageTiming> stage_timings; ///< pipelines: one per kernel, in order
  int batch_size = 1;                     ///< jobs that shared this job's kernel launch (dynamic batching)
  std::vector<std::string> kept;          ///< actor calls: names of the outputs the actor kept
  std::uint64_t actor_version = 0;        ///< actor calls: the actor's state version after the call

  bool ok() const { return status.is_ok(); }
};

}  // namespace bridge
