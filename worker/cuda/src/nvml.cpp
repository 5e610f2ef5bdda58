#include "nvml.hpp"

#include <dlfcn.h>

namespace bridge::worker::cuda {
namespace {
constexpr int kNvmlSuccess = 0;
constexpr int kNvmlTemperatureGpu = 0;
struct NvmlUtilization {
  unsigned gpu;
  unsigned memory;
};
}  // namespace

Nvml::Nvml(const std::string& pci_bus_id) {
  library_ = ::dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
  if (library_ == nullptr) {
    why_ = "libnvidia-ml.so.1 not found (driver without NVML)";
    return;
  }
  auto init = reinterpret_cast<int (*)()>(::dlsym(library_, "nvmlInit_v2"));
  auto by_bus = reinterpret_cast<int (*)(const char*, void**)>(::dlsym(library_, "nvmlDeviceGetHandleByPciBusId_v2"));
  shutdown_ = reinterpret_cast<int (*)()>(::dlsym(library_, "nvmlShutdown"));
  temperature_ = reinterpret_cast<int (*)(void*, int, unsigned*)>(::dlsym(library_, "nvmlDeviceGetTemperature"));
  utilization_ = reinterpret_cast<int (*)(void*, void*)>(::dlsym(library_, "nvmlDeviceGetUtilizationRates"));
  power_ = reinterpret_cast<int (*)(void*, unsigned*)>(::dlsym(library_, "nvmlDeviceGetPowerUsage"));
  if (!init || !by_bus || !shutdown_) {
    why_ = "NVML lacks the needed entry points";
    return;
  }
  if (init() != kNvmlSuccess) {
    why_ = "nvmlInit failed";
    shutdown_ = nullptr;
    return;
  }
  void* device = nullptr;
  if (by_bus(pci_bus_id.c_str(), &device) != kNvmlSuccess) {
    why_ = "NVML does not know device " + pci_bus_id;
    return;
  }
  device_ = device;
}

Nvml::~Nvml() {
  if (shutdown_) shutdown_();
  if (library_) ::dlclose(library_);
}

NvmlReadings Nvml::read() const {
  NvmlReadings r;
  if (device_ == nullptr) return r;
  unsigned value = 0;
  if (temperature_ && temperature_(device_, kNvmlTemperatureGpu, &value) == kNvmlSuccess)
    r.temperature_c = static_cast<float>(value);
  NvmlUtilization utilization{};
  if (utilization_ && utilization_(device_, &utilization) == kNvmlSuccess)
    r.utilization_percent = static_cast<float>(utilization.gpu);
  if (power_ && power_(device_, &value) == kNvmlSuccess) r.power_watts = static_cast<float>(value) / 1000.0f;  // mW
  return r;
}

}  // namespace bridge::worker::cuda
