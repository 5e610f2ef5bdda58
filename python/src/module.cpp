// The _gpubridge extension: bridge::Client, its results and streams, for the gpubridge package
// (python/gpubridge/), which adds futures, asyncio, actors and the error classes in Python.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "arrays.hpp"
#include "client.hpp"
#include "result.hpp"

PYBIND11_MODULE(_gpubridge, m) {
  using namespace gpubridge;
  namespace py = pybind11;
  m.doc() = "The native half of the gpubridge package: use `import gpubridge`.";
  init_arrays();
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
      .def("actor_reset", &PyClient::actor_reset)
      .def("resent_after_restart", &PyClient::resent_after_restart)
      .def("tenant", &PyClient::tenant)
      .def("closed", &PyClient::closed)
      .def("on_delivery_thread", &PyClient::on_delivery_thread)
      .def("abandon_after_fork", &PyClient::abandon_after_fork)
      .def("close", &PyClient::close);
  py::class_<PyStream>(m, "_Stream")
      .def(py::init<const PyClient&, std::string, py::handle, std::size_t, bool, std::string, std::string,
                    std::optional<double>>(),
           py::arg("client"), py::arg("kernel"), py::arg("params"), py::arg("window"), py::arg("block_when_full"),
           py::arg("tenant"), py::arg("placement"), py::arg("timeout"))
      .def("write", &PyStream::write)
      .def("read", &PyStream::read)
      .def("close", &PyStream::close)
      .def("outstanding", &PyStream::outstanding);
  py::class_<PySendBatch>(m, "_SendBatch")
      .def(py::init<const PyClient&>(), py::arg("client"))
      .def("enter", &PySendBatch::enter)
      .def("exit", &PySendBatch::exit)
      .def("send_now", &PySendBatch::send_now);
}
