#pragma once
/// @file What a client sends (JobRequest) and gets back (JobResult).

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "bridge/status.hpp"
#include "bridge/tensor.hpp"

namespace bridge {

/// Where a job may run; values match `bridge.wire.Placement`.
enum class Placement : std::uint8_t { kAny = 0, kPreferGpu = 1, kRequireGpu = 2, kCpuOnly = 3 };
/// "any", "prefer-gpu", "require-gpu", "cpu-only".
const char* placement_name(Placement placement);
bool parse_placement(std::string_view name, Placement& out);

/// Values match `bridge.wire.DeviceKind`.
enum class DeviceKind : std::uint8_t { kCpu = 0, kCuda = 1 };
const char* device_kind_name(DeviceKind kind);  // "cpu", "cuda"

struct JobRequest {
  std::string kernel;                     ///< catalog name, e.g. "vector_add" (docs/kernels.md)
  std::vector<Tensor> inputs;             ///< positional; names are informational
  std::map<std::string, double> params;   ///< scalar parameters, e.g. {"alpha", 2.0} for saxpy
  std::string tenant;                     ///< empty: the client's default tenant
  std::string actor_id;                   ///< optional
  int priority = 0;                       ///< -128..127, higher first within a tenant
  Placement placement = Placement::kAny;
  std::chrono::milliseconds timeout{0};   ///< 0: the client's default timeout
};

struct Timings {
  std::chrono::microseconds queued{0};    ///< waiting in the broker
  std::chrono::microseconds transfer{0};  ///< moving bytes to/from the device in the worker
  std::chrono::microseconds compute{0};   ///< running the kernel
  std::chrono::microseconds total{0};     ///< submit to result, measured by the client
};

struct JobResult {
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

  bool ok() const { return status.is_ok(); }
};

}  // namespace bridge
