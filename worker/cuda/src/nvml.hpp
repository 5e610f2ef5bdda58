#pragma once
// NVML, loaded at run time from the driver (libnvidia-ml.so.1) when present: temperature,
// utilisation and power. Nothing is guessed: a reading that fails stays -1 (unknown).

#include <string>

namespace bridge::worker::cuda {

struct NvmlReadings {
  float temperature_c = -1;
  float utilization_percent = -1;
  float power_watts = -1;
};

class Nvml {
 public:
  /// Opens NVML and the device with this PCI bus id ("0000:3B:00.0", from cudaDeviceGetPCIBusId).
  explicit Nvml(const std::string& pci_bus_id);
  ~Nvml();
  Nvml(const Nvml&) = delete;
  Nvml& operator=(const Nvml&) = delete;

  bool available() const { return device_ != nullptr; }
  /// Why not available, for the log.
  const std::string& why_unavailable() const { return why_; }
  NvmlReadings read() const;

 private:
  void* library_ = nullptr;
  void* device_ = nullptr;
  std::string why_;
  // Entry points (NVML's C ABI, declared here: the toolkit does not ship nvml.h on every system).
  int (*shutdown_)() = nullptr;
  int (*temperature_)(void*, int, unsigned*) = nullptr;
  int (*utilization_)(void*, void*) = nullptr;
  int (*power_)(void*, unsigned*) = nullptr;
};

}  // namespace bridge::worker::cuda
