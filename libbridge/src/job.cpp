#include "bridge/job.hpp"

namespace bridge {

const char* placement_name(Placement placement) {
  switch (placement) {
    case Placement::kAny: return "any";
    case Placement::kPreferGpu: return "prefer-gpu";
    case Placement::kRequireGpu: return "require-gpu";
    case Placement::kCpuOnly: return "cpu-only";
  }
  return "unknown";
}

bool parse_placement(std::string_view name, Placement& out) {
  for (Placement p : {Placement::kAny, Placement::kPreferGpu, Placement::kRequireGpu, Placement::kCpuOnly}) {
    if (name == placement_name(p)) {
      out = p;
      return true;
    }
  }
  return false;
}

const char* device_kind_name(DeviceKind kind) {
  switch (kind) {
    case DeviceKind::kCpu: return "cpu";
    case DeviceKind::kCuda: return "cuda";
  }
  return "unknown";
}

}  // namespace bridge

namespace bridge {

JobRequest Pipeline::request(std::vector<Tensor> inputs) const {
  if (steps_.empty()) throw std::logic_error("Pipeline::request: the pipeline has no steps; add one with then()");
  JobRequest job;
  job.kernel = steps_.front().kernel;
  job.params = steps_.front().params;
  job.stages.assign(steps_.begin() + 1, steps_.end());
  job.inputs = std::move(inputs);
  return job;
}

}  // namespace bridge
