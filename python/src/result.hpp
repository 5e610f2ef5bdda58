#pragma once
/// @file Result: a finished job as Python sees it. Outputs become numpy arrays on first access, so
/// a result whose outputs are never read costs no array objects.

#include <pybind11/pybind11.h>

#include "bridge/job.hpp"

namespace gpubridge {

class Result {
 public:
  explicit Result(bridge::JobResult result) : result_(std::move(result)) {}

  const bridge::JobResult& job() const { return result_; }
  /// The outputs as numpy arrays over the received frames (no copy); the same list on every access.
  pybind11::list outputs();
  pybind11::dict timings() const;
  pybind11::list stage_timings() const;

 private:
  bridge::JobResult result_;
  pybind11::object outputs_;  // built on first access
};

/// Binds Result (and the error factory hook) into `module`.
void bind_result(pybind11::module_& module);

/// The exception for a failed result: an instance of the gpubridge.Error subclass of its code.
pybind11::object make_error(const bridge::JobResult& result, pybind11::object result_object);
/// The exception for a failed request that has no result (status, quotas, actor_info).
pybind11::object make_error(const bridge::Status& status);

}  // namespace gpubridge
