// The _gpubridge extension: bridge::Client, its results and streams, for the gpubridge package
// (python/gpubridge/), which adds futures, asyncio, actors and the error classes in Python.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <memory>
#include <optional>

#include "arrays.hpp"
#include "bridge/client.hpp"
#include "bridge/stream.hpp"
#include "delivery.hpp"
#include "gil.hpp"
#include "reports.hpp"
#include "result.hpp"

namespace py = pybind11;

namespace gpubridge {
namespace {

std::chrono::milliseconds to_ms(std::optional<double> seconds) {
  return std::chrono::milliseconds(seconds ? static_cast<std::int64_t>(*seconds * 1000.0 + 0.5) : 0);
}

bridge::Placement placement_of(const std::string& name) {
  bridge::Placement out;
  if (!bridge::parse_placement(name, out))
    throw py::value_error("placement '" + name + "' is not one of any, prefer-gpu, require-gpu, cpu-only");
  return out;
}

// Completes a concurrent.futures.Future with the GIL held: a Result, or the error of its status. A
// future its caller cancelled takes nothing.
void complete(PyObject* future_ptr, bridge::JobResult result) {
  // Interned once: this runs for every job, and attr("...") would make the name string each time.
  static PyObject* const kCancelled = PyUnicode_InternFromString("cancelled");
  static PyObject* const kSetResult = PyUnicode_InternFromString("set_result");
  py::object future = py::reinterpret_steal<py::object>(future_ptr);
  try {
    auto cancelled = py::reinterpret_steal<py::object>(PyObject_CallMethodNoArgs(future.ptr(), kCancelled));
    if (!cancelled) throw py::error_already_set();
    if (cancelled.ptr() == Py_True) return;
    if (result.ok()) {
      py::object shown = py::cast(Result(std::move(result)));
      if (!py::reinterpret_steal<py::object>(PyObject_CallMethodOneArg(future.ptr(), kSetResult, shown.ptr())))
        throw py::error_already_set();
    } else {
      py::object shown = py::cast(Result(std::move(result)));
      future.attr("set_exception")(make_error(shown.cast<Result&>().job(), shown));
    }
  } catch (py::error_already_set& e) {
    e.discard_as_unraisable("gpubridge: completing a job's future");
  }
}

class PyClient {
 public:
  PyClient(std::string broker, std::string tenant, std::string key_file, std::string broker_key_file, double timeout,
           int retry_attempts, double retry_initial_backoff, double retry_max_backoff, double broker_check)
      : delivery_(std::make_unique<Delivery>(complete)) {
    bridge::Client::Options options;
    options.broker = std::move(broker);
    options.tenant = std::move(tenant);
    options.key_file = std::move(key_file);
    options.broker_key_file = std::move(broker_key_file);
    options.timeout = to_ms(timeout);
    options.retry = {retry_attempts, to_ms(retry_initial_backoff), to_ms(retry_max_backoff)};
    options.broker_check = to_ms(broker_check);
    client_ = std::make_unique<bridge::Client>(std::move(options));
  }

  ~PyClient() { close(); }

  // A plain job: the kernel, its inputs and params. The common case, with as little conversion as can be.
  std::uint64_t submit(std::string kernel, const py::sequence& inputs, const py::handle& params, py::object future) {
    bridge::JobRequest request{.kernel = std::move(kernel)};
    if (!params.is_none())
      for (auto [name, value] : py::reinterpret_borrow<py::dict>(params))
        request.params.emplace(name.cast<std::string>(), value.cast<double>());
    return send(std::move(request), inputs, std::move(future));
  }

  // Any job: tenant, actor, priority, placement, timeout, pipeline stages, resident inputs, kept outputs.
  std::uint64_t submit_with(const std::string& kernel, const py::sequence& inputs,
                            const std::map<std::string, double>& params, py::object future, const std::string& tenant,
                            const std::string& actor_id, int priority, const std::string& placement,
                            std::optional<double> timeout,
                            const std::vector<std::pair<std::string, std::map<std::string, double>>>& stages,
                            const std::vector<std::string>& resident_inputs,
                            const std::vector<std::string>& keep_outputs) {
    bridge::JobRequest request{.kernel = kernel,
                               .params = params,
                               .tenant = tenant,
                               .actor_id = actor_id,
                               .priority = priority,
                               .placement = placement_of(placement),
                               .timeout = to_ms(timeout),
                               .resident_inputs = resident_inputs,
                               .keep_outputs = keep_outputs};
    for (const auto& [name, stage_params] : stages) request.stages.push_back({name, stage_params});
    return send(std::move(request), inputs, std::move(future));
  }

  // The job's tensors are converted with the GIL held (they reference Python arrays); the encoding
  // and the hand-off to the I/O thread run without it.
  std::uint64_t send(bridge::JobRequest request, const py::sequence& inputs, py::object future) {
    request.inputs.reserve(inputs.size());
    for (py::handle input : inputs)
      request.inputs.push_back(input.is_none() ? bridge::Tensor() : tensor_from_python(input));
    release_deferred();
    bridge::Client& client = live();
    Delivery* delivery = delivery_.get();
    PyObject* handle = future.release().ptr();  // a strong reference, dropped by the delivery thread
    py::gil_scoped_release unlocked;
    return client.submit(std::move(request),
                         [delivery, handle](bridge::JobResult result) { delivery->post(handle, std::move(result)); });
  }

  void cancel(std::uint64_t job_id) { live().cancel(job_id); }

  py::dict status() {
    bridge::FleetStatus out;
    raise_unless_ok(blocking([&](bridge::Client& c) { return c.status(out); }));
    return to_python(out);
  }

  py::dict quotas(const std::string& tenant) {
    bridge::QuotaReport out;
    raise_unless_ok(blocking([&](bridge::Client& c) { return c.quotas(tenant, out); }));
    return to_python(out);
  }

  py::dict actor_info(const std::string& tenant, const std::string& actor_id) {
    bridge::ActorInfo out;
    raise_unless_ok(blocking([&](bridge::Client& c) { return c.actor_info(tenant, actor_id, out); }));
    return to_python(out);
  }

  std::uint64_t resent_after_restart() { return live().resent_after_restart(); }
  std::string tenant() { return live().options().tenant; }
  bool closed() const { return client_ == nullptr; }
  bool on_delivery_thread() const { return delivery_ != nullptr && delivery_->is_current(); }
  bridge::Client& live() {
    if (!client_) throw py::value_error("the gpubridge Client is closed");
    return *client_;
  }

  // Jobs still pending are answered CANCELLED, and their futures completed, before this returns.
  void close() {
    if (!client_ && !delivery_) return;
    {
      std::optional<py::gil_scoped_release> unlocked;
      if (PyGILState_Check()) unlocked.emplace();
      client_.reset();  // joins the I/O thread, which posts the CANCELLED answers
    }
    delivery_.reset();  // delivers them (it releases the GIL while it waits)
  }

 private:
  template <class Fn>
  bridge::Status blocking(Fn&& fn) {
    bridge::Client& client = live();
    py::gil_scoped_release unlocked;
    return fn(client);
  }
  static void raise_unless_ok(const bridge::Status& status) {
    if (status.is_ok()) return;
    py::object error = make_error(status);
    PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(error.ptr())), error.ptr());
    throw py::error_already_set();
  }

  std::unique_ptr<Delivery> delivery_;  // declared first: destroyed after the client (see close)
  std::unique_ptr<bridge::Client> client_;
};

// A Stream (bridge/stream.hpp): writes and reads wait without the GIL.
class PyStream {
 public:
  PyStream(PyClient& client, const std::string& kernel, const std::map<std::string, double>& params, std::size_t window,
           bool block_when_full, const std::string& tenant, const std::string& placement, std::optional<double> timeout)
      : stream_(bridge::Stream::open(client.live(), kernel,
                                     {.tenant = tenant,
                                      .params = params,
                                      .window = window,
                                      .block_when_full = block_when_full,
                                      .placement = placement_of(placement),
                                      .timeout = to_ms(timeout)})) {}

  void write(const py::list& inputs) {
    std::vector<bridge::Tensor> tensors;
    for (py::handle input : inputs) tensors.push_back(tensor_from_python(input));
    bridge::Status status;
    {
      py::gil_scoped_release unlocked;
      status = stream_.write(std::move(tensors));
    }
    if (!status.is_ok()) raise(make_error(status));
  }

  // The next result in write order (a failed item raises its error); None when closed and read out.
  py::object read() {
    std::optional<bridge::JobResult> result;
    {
      py::gil_scoped_release unlocked;
      result = stream_.read();
    }
    release_deferred();
    if (!result) return py::none();
    const bool ok = result->ok();
    py::object shown = py::cast(Result(std::move(*result)));
    if (!ok) raise(make_error(shown.cast<Result&>().job(), shown));
    return shown;
  }

  void close() { stream_.close(); }
  std::size_t outstanding() const { return stream_.outstanding(); }

 private:
  static void raise(const py::object& error) {
    PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(error.ptr())), error.ptr());
    throw py::error_already_set();
  }
  bridge::Stream stream_;
};

}  // namespace
}  // namespace gpubridge

PYBIND11_MODULE(_gpubridge, m) {
  using namespace gpubridge;
  namespace py = pybind11;
  m.doc() = "The native half of the gpubridge package: use `import gpubridge`.";
  bind_result(m);
  py::class_<PyClient>(m, "_Client")
      .def(py::init<std::string, std::string, std::string, std::string, double, int, double, double, double>(),
           py::arg("broker"), py::arg("tenant"), py::arg("key_file"), py::arg("broker_key_file"), py::arg("timeout"),
           py::arg("retry_attempts"), py::arg("retry_initial_backoff"), py::arg("retry_max_backoff"),
           py::arg("broker_check"))
      .def("submit", &PyClient::submit)
      .def("submit_with", &PyClient::submit_with, py::arg("kernel"), py::arg("inputs"), py::arg("params"),
           py::arg("future"), py::arg("tenant"), py::arg("actor_id"), py::arg("priority"), py::arg("placement"),
           py::arg("timeout"), py::arg("stages"), py::arg("resident_inputs"), py::arg("keep_outputs"))
      .def("cancel", &PyClient::cancel)
      .def("status", &PyClient::status)
      .def("quotas", &PyClient::quotas)
      .def("actor_info", &PyClient::actor_info)
      .def("resent_after_restart", &PyClient::resent_after_restart)
      .def("tenant", &PyClient::tenant)
      .def("closed", &PyClient::closed)
      .def("on_delivery_thread", &PyClient::on_delivery_thread)
      .def("close", &PyClient::close);
  py::class_<PyStream>(m, "_Stream")
      .def(py::init<PyClient&, std::string, std::map<std::string, double>, std::size_t, bool, std::string, std::string,
                    std::optional<double>>(),
           py::arg("client"), py::arg("kernel"), py::arg("params"), py::arg("window"), py::arg("block_when_full"),
           py::arg("tenant"), py::arg("placement"), py::arg("timeout"), py::keep_alive<1, 2>())
      .def("write", &PyStream::write)
      .def("read", &PyStream::read)
      .def("close", &PyStream::close)
      .def("outstanding", &PyStream::outstanding);
}
