#include "bridge/broker/placement.hpp"

#include <algorithm>

namespace bridge::broker {
namespace {
constexpr double kUnknown = 0.5;
constexpr double kHotCelsius = 90.0;

double free_slot_fraction(const WorkerRecord& w) {
  if (w.slots == 0) return 0.0;
  return static_cast<double>(w.slots - std::min<std::size_t>(w.slots, w.inflight.size())) / w.slots;
}
}  // namespace

double device_score(const WorkerRecord& w) {
  const double memory = (w.metrics.free_memory_bytes < 0 || w.device.total_memory_bytes == 0)
                            ? kUnknown
                            : std::clamp(static_cast<double>(w.metrics.free_memory_bytes) /
                                             static_cast<double>(w.device.total_memory_bytes),
                                         0.0, 1.0);
  const double queue = free_slot_fraction(w);
  const double thermal =
      w.metrics.temperature_c < 0 ? kUnknown : std::max(0.0, 1.0 - w.metrics.temperature_c / kHotCelsius);
  const double capability = w.device.compute_capability_major < 0
                                ? kUnknown
                                : std::min(1.0, w.device.compute_capability_major / 10.0);
  return 0.4 * memory + 0.3 * queue + 0.2 * thermal + 0.1 * capability;
}

double placement_rank(Placement placement, const WorkerRecord& worker) {
  const bool wants_gpu = placement == Placement::kPreferGpu || placement == Placement::kRequireGpu;
  if (wants_gpu && worker.is_gpu()) return 2.0 + device_score(worker);  // above any CPU worker's [0, 1]
  return free_slot_fraction(worker);
}

}  // namespace bridge::broker
