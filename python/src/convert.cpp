#include "convert.hpp"

#include <cmath>

namespace py = pybind11;

namespace gpubridge {

std::chrono::milliseconds to_ms(std::optional<double> seconds, const char* what) {
  if (!seconds) return std::chrono::milliseconds(0);
  // 2^31 s is past any deadline the fleet keeps; beyond it the conversion would overflow.
  if (!std::isfinite(*seconds) || *seconds < 0 || *seconds > 2147483647.0)
    throw py::value_error(std::string(what) + " must be a number of seconds, 0 or more (and finite), not " +
                          std::to_string(*seconds));
  return std::chrono::milliseconds(static_cast<std::int64_t>(*seconds * 1000.0 + 0.5));
}

bridge::Placement placement_of(const std::string& name) {
  bridge::Placement out;
  if (!bridge::parse_placement(name, out))
    throw py::value_error("placement '" + name + "' is not one of any, prefer-gpu, require-gpu, cpu-only");
  return out;
}

int priority_of(int priority) {
  if (priority < -128 || priority > 127)
    throw py::value_error("priority " + std::to_string(priority) + " is outside -128..127");
  return priority;
}

std::map<std::string, double> params_of(const py::handle& params) {
  std::map<std::string, double> out;
  if (params.is_none()) return out;
  py::dict dict;
  try {
    dict = py::isinstance<py::dict>(params) ? py::reinterpret_borrow<py::dict>(params)
                                            : py::dict(py::reinterpret_borrow<py::object>(params));
  } catch (const py::error_already_set&) {
    throw py::type_error("params must be a mapping of names to numbers, such as {\"alpha\": 2.0}, not " +
                         py::repr(params).cast<std::string>());
  }
  for (auto [name, value] : dict) {
    if (!py::isinstance<py::str>(name))
      throw py::type_error("params: a name must be a str, not " + py::repr(name).cast<std::string>());
    Py_ssize_t size = 0;
    const char* utf8 = PyUnicode_AsUTF8AndSize(name.ptr(), &size);
    if (utf8 == nullptr) {
      PyErr_Clear();
      throw py::value_error("params: the name " + py::repr(name).cast<std::string>() + " is not valid Unicode");
    }
    const std::string key(utf8, static_cast<std::size_t>(size));
    const double number = PyFloat_AsDouble(value.ptr());  // float, int, bool, numpy scalars, __float__
    if (number == -1.0 && PyErr_Occurred()) {
      PyErr_Clear();
      throw py::type_error("params: '" + key + "' must be a number, not " + py::repr(value).cast<std::string>());
    }
    out.emplace(key, number);
  }
  return out;
}

void raise(const py::object& error) {
  PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(error.ptr())), error.ptr());
  throw py::error_already_set();
}

}  // namespace gpubridge
