#pragma once
/// @file The broker's reports (fleet status, quotas, actors) as plain Python dicts, with the keys
/// of `bridgectl ... --json`.

#include <pybind11/pybind11.h>

#include "bridge/fleet.hpp"

namespace gpubridge {

pybind11::dict to_python(const bridge::FleetStatus& status);
pybind11::dict to_python(const bridge::QuotaReport& report);
pybind11::dict to_python(const bridge::ActorInfo& actor);

}  // namespace gpubridge
