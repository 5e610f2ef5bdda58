#pragma once
/// @file Arrays in and out of the fleet without copies.

#include <string>

#include <pybind11/numpy.h>

#include "bridge/tensor.hpp"

namespace gpubridge {

/// A job input: a numpy array, any object with `__dlpack__` (through numpy.from_dlpack), any object
/// with the buffer protocol, or a (nested) sequence of numbers. The tensor shares the array's memory
/// when it is C-contiguous, aligned, in native byte order and of a carried dtype (f32 f64 i32 i64
/// u8), and keeps the array alive; otherwise it holds one converted copy. Raises TypeError for a
/// dtype the fleet does not carry, naming the ones it does.
bridge::Tensor tensor_from_python(pybind11::handle object);

/// A job output: a writable numpy array over the tensor's bytes (the received frame), without a
/// copy; the array keeps the tensor, and so the frame, alive.
pybind11::array array_from_tensor(const bridge::Tensor& tensor);

/// Imports numpy and makes the dtype table: call once, from the module's init.
void init_arrays();
/// numpy's name of a dtype ("float32", ...).
const char* numpy_name(bridge::DType dtype);

}  // namespace gpubridge
