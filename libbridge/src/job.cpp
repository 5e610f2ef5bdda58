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
