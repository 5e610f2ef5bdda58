#include "result.hpp"

#include <pybind11/stl.h>

#include "arrays.hpp"

namespace py = pybind11;

namespace gpubridge {
namespace {

double seconds(std::chrono::microseconds us) { return static_cast<double>(us.count()) / 1e6; }

// gpubridge.errors.from_status, registered by the package when it is imported.
py::object& error_factory() {
  static auto* factory = new py::object();  // leaked: it must outlive the interpreter's teardown order
  return *factory;
}

py::object error_for(const bridge::Status& status, std::chrono::milliseconds retry_after, py::object result) {
  if (!error_factory()) throw std::logic_error("gpubridge: import the gpubridge package, not its _gpubridge module");
  return error_factory()(bridge::status_code_name(status.code()), static_cast<int>(status.code()), status.message(),
                         static_cast<double>(retry_after.count()) / 1e3, result);
}

}  // namespace

py::list Result::outputs() {
  if (!outputs_) {
    py::list arrays;
    for (const bridge::Tensor& t : result_.outputs) arrays.append(array_from_tensor(t));
    outputs_ = arrays;
  }
  return outputs_;
}

py::dict Result::timings() const {
  py::dict out;
  out["queued"] = seconds(result_.timings.queued);
  out["transfer"] = seconds(result_.timings.transfer);
  out["compute"] = seconds(result_.timings.compute);
  out["total"] = seconds(result_.timings.total);
  return out;
}

py::list Result::stage_timings() const {
  py::list out;
  for (const auto& s : result_.stage_timings) out.append(py::make_tuple(s.kernel, seconds(s.compute)));
  return out;
}

py::object make_error(const bridge::JobResult& result, py::object result_object) {
  return error_for(result.status, result.retry_after, std::move(result_object));
}

py::object make_error(const bridge::Status& status) {
  return error_for(status, std::chrono::milliseconds(0), py::none());
}

void bind_result(py::module_& m) {
  py::class_<Result>(m, "Result", "A finished job: its outputs and where and how it ran.")
      .def_property_readonly("outputs", &Result::outputs,
                             "The output arrays (numpy, writable, over the received bytes: no copy).")
      .def_property_readonly("job_id", [](const Result& r) { return r.job().job_id; })
      .def_property_readonly(
          "worker_id", [](const Result& r) { return r.job().worker_id; },
          "The worker that ran the job ('' if it never reached one).")
      .def_property_readonly(
          "device_kind", [](const Result& r) { return bridge::device_kind_name(r.job().device_kind); },
          "'cpu' or 'cuda'.")
      .def_property_readonly("device_name", [](const Result& r) { return r.job().device_name; })
      .def_property_readonly(
          "fallback_reason", [](const Result& r) { return r.job().fallback_reason; },
          "Why a job that preferred a GPU ran on a CPU ('' if it did not).")
      .def_property_readonly("timings", &Result::timings,
                             "Seconds: 'queued' in the broker, 'transfer' and 'compute' on the worker, 'total' "
                             "from submit to result.")
      .def_property_readonly("stage_timings", &Result::stage_timings,
                             "Pipelines: (kernel, compute seconds) per stage, in order.")
      .def_property_readonly(
          "attempts", [](const Result& r) { return r.job().attempts; },
          "Dispatches it took (more than 1 after a worker was lost).")
      .def_property_readonly(
          "batch_size", [](const Result& r) { return r.job().batch_size; },
          "Jobs that shared this job's kernel launch (dynamic batching).")
      .def_property_readonly(
          "kept", [](const Result& r) { return r.job().kept; }, "Actor calls: the outputs the actor kept.")
      .def_property_readonly(
          "actor_version", [](const Result& r) { return r.job().actor_version; },
          "Actor calls: the actor's state version after the call.")
      .def(
          "_output_address",
          [](const Result& r, std::size_t i) {
            return reinterpret_cast<std::uintptr_t>(r.job().outputs.at(i).bytes().data());
          },
          "Where output i's bytes lie (the received frame), for tests of the no-copy path.")
      .def("__len__", [](Result& r) { return r.job().outputs.size(); })
      .def("__getitem__", [](Result& r, py::object index) { return r.outputs()[index]; })
      .def("__iter__", [](Result& r) { return r.outputs().attr("__iter__")(); })
      .def("__repr__", [](const Result& r) {
        return "<gpubridge.Result job " + std::to_string(r.job().job_id) + ": " +
               std::to_string(r.job().outputs.size()) + " output(s) from " +
               (r.job().worker_id.empty() ? std::string("?") : r.job().worker_id) + " (" +
               bridge::device_kind_name(r.job().device_kind) + ")>";
      });
  m.def("_set_error_factory", [](py::object factory) { error_factory() = std::move(factory); });
}

}  // namespace gpubridge
