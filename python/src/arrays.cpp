#include "arrays.hpp"

#include <cstdint>

#include "gil.hpp"

namespace py = pybind11;

namespace gpubridge {
namespace {

struct Carried {
  bridge::DType dtype;
  py::dtype numpy;
};

// The dtypes the fleet carries, as numpy dtypes in native byte order.
const std::vector<Carried>& carried() {
  static const auto* table = new std::vector<Carried>{{bridge::DType::kF32, py::dtype::of<float>()},
                                                      {bridge::DType::kF64, py::dtype::of<double>()},
                                                      {bridge::DType::kI32, py::dtype::of<std::int32_t>()},
                                                      {bridge::DType::kI64, py::dtype::of<std::int64_t>()},
                                                      {bridge::DType::kU8, py::dtype::of<std::uint8_t>()}};
  return *table;
}

// Anything the caller gave, as a numpy array; a view wherever numpy can make one.
py::array as_array(py::handle object) {
  if (py::isinstance<py::array>(object)) return py::reinterpret_borrow<py::array>(object);
  py::module_ numpy = py::module_::import("numpy");
  if (py::hasattr(object, "__dlpack__")) return numpy.attr("from_dlpack")(object);
  // memoryview first: numpy reads bytes and bytearray as one string otherwise, not as uint8.
  if (PyObject_CheckBuffer(object.ptr()))
    return numpy.attr("asarray")(py::memoryview(py::reinterpret_borrow<py::object>(object)));
  return numpy.attr("asarray")(object);
}

}  // namespace

void init_arrays() {
  // Here, while the module is imported (one thread): numpy imported and the table made inside the
  // static's guard would deadlock threads that submit lists at once (one holds the guard and waits
  // for the GIL; another holds the GIL and waits for the guard).
  py::module_::import("numpy");
  (void)carried();
}

const char* numpy_name(bridge::DType dtype) {
  switch (dtype) {
    case bridge::DType::kF32: return "float32";
    case bridge::DType::kF64: return "float64";
    case bridge::DType::kI32: return "int32";
    case bridge::DType::kI64: return "int64";
    case bridge::DType::kU8: return "uint8";
  }
  return "?";
}

bridge::Tensor tensor_from_python(py::handle object) {
  py::array array = as_array(object);
  const Carried* match = nullptr;
  for (const Carried& c : carried())
    if (array.dtype().equal(c.numpy)) match = &c;
  if (match == nullptr) {
    // The same kind and size in the other byte order converts; anything else is the caller's to fix.
    for (const Carried& c : carried())
      if (array.dtype().kind() == c.numpy.kind() && array.dtype().itemsize() == c.numpy.itemsize()) match = &c;
    if (match == nullptr)
      throw py::type_error("gpubridge carries float32, float64, int32, int64 and uint8 arrays, not " +
                           py::str(array.dtype()).cast<std::string>() + ": convert it first (array.astype(...))");
    array = array.attr("astype")(match->numpy);
  }
  const auto aligned = [](const py::array& a) {
    return reinterpret_cast<std::uintptr_t>(a.data()) % static_cast<std::uintptr_t>(a.itemsize()) == 0;
  };
  if (!(array.flags() & py::array::c_style) || !aligned(array))
    array = py::module_::import("numpy").attr("ascontiguousarray")(array);  // numpy allocates aligned
  bridge::Shape shape(array.shape(), array.shape() + array.ndim());
  const auto* data = static_cast<const std::byte*>(array.data());
  const auto size = static_cast<std::size_t>(array.nbytes());
  return bridge::Tensor::adopt(match->dtype, std::move(shape), {}, python_owner(array.release().ptr()), data, size);
}

py::array array_from_tensor(const bridge::Tensor& tensor) {
  py::dtype dtype;
  for (const Carried& c : carried())
    if (c.dtype == tensor.dtype()) dtype = c.numpy;
  auto* keep = new bridge::Tensor(tensor);
  py::capsule owner(keep, [](void* p) { delete static_cast<bridge::Tensor*>(p); });
  std::vector<py::ssize_t> shape(tensor.shape().begin(), tensor.shape().end());
  // A zero-byte tensor may have no storage; numpy wants an address all the same.
  static std::int64_t empty = 0;
  const void* data = tensor.byte_size() > 0 ? static_cast<const void*>(tensor.bytes().data()) : &empty;
  return py::array(dtype, shape, data, owner);
}

}  // namespace gpubridge
