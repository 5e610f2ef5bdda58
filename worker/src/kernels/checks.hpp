#pragma once
// Argument checks the kernels' plan functions share; each returns INVALID_ARGUMENT with a message
// that names the kernel, the input and the problem.

#include <string>

#include "bridge/worker/kernel.hpp"

namespace bridge::worker::checks {

std::string shape_string(const Shape& shape);

Status input_count(const char* kernel, const KernelArgs& args, std::size_t expected, const char* names);
Status dtype_is(const char* kernel, const Tensor& t, const char* input, DType expected);
Status rank_is(const char* kernel, const Tensor& t, const char* input, std::size_t rank);
Status same_shape(const char* kernel, const Tensor& a, const char* a_name, const Tensor& b, const char* b_name);
/// Finds a required param and checks it is finite; `out` receives its value.
Status required_param(const char* kernel, const KernelArgs& args, const char* name, double& out);
/// A param the kernel uses as a float32 (a scale, a shift): finite as a double and within float's
/// range, else it would turn into inf and every output with it.
Status float_param(const char* kernel, const char* name, double value);

}  // namespace bridge::worker::checks
