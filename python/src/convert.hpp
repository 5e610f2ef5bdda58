#pragma once
/// @file Python arguments to the C++ API's types, each refused with a TypeError or ValueError that
/// says what to pass instead.

#include <chrono>
#include <map>
#include <optional>
#include <string>

#include <pybind11/pybind11.h>

#include "bridge/job.hpp"

namespace gpubridge {

/// Seconds (finite, >= 0) as milliseconds; None is 0. `what` names the argument in the error.
std::chrono::milliseconds to_ms(std::optional<double> seconds, const char* what);
/// "any", "prefer-gpu", "require-gpu" or "cpu-only".
bridge::Placement placement_of(const std::string& name);
/// A job's priority, -128..127.
int priority_of(int priority);
/// Any mapping (or pairs) of str to number; None is none. Nothing is dropped silently.
std::map<std::string, double> params_of(const pybind11::handle& params);
/// Raises `error` (an exception instance) as the current Python exception.
[[noreturn]] void raise(const pybind11::object& error);

}  // namespace gpubridge
