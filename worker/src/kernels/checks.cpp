#include "checks.hpp"

#include <cmath>
#include <cstdio>
#include <limits>

namespace bridge::worker::checks {
namespace {
Status invalid(const char* kernel, const std::string& problem) {
  return {StatusCode::kInvalidArgument, std::string(kernel) + ": " + problem};
}
}  // namespace

std::string shape_string(const Shape& shape) {
  std::string out = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) out += (i ? "," : "") + std::to_string(shape[i]);
  return out + "]";
}

Status input_count(const char* kernel, const KernelArgs& args, std::size_t expected, const char* names) {
  if (args.inputs.size() == expected) return {};
  return invalid(kernel, "expects " + std::to_string(expected) + " input(s) (" + names + "), got " +
                             std::to_string(args.inputs.size()));
}

Status dtype_is(const char* kernel, const Tensor& t, const char* input, DType expected) {
  if (t.dtype() == expected) return {};
  return invalid(kernel, std::string("input '") + input + "' must be " + dtype_name(expected) + ", got " +
                             dtype_name(t.dtype()));
}

Status rank_is(const char* kernel, const Tensor& t, const char* input, std::size_t rank) {
  if (t.shape().size() == rank) return {};
  return invalid(kernel, std::string("input '") + input + "' must have rank " + std::to_string(rank) + ", got shape " +
                             shape_string(t.shape()));
}

Status same_shape(const char* kernel, const Tensor& a, const char* a_name, const Tensor& b, const char* b_name) {
  if (a.shape() == b.shape()) return {};
  return invalid(kernel, std::string("inputs '") + a_name + "' " + shape_string(a.shape()) + " and '" + b_name +
                             "' " + shape_string(b.shape()) + " must have the same shape");
}

Status required_param(const char* kernel, const KernelArgs& args, const char* name, double& out) {
  const double* value = args.find_param(name);
  if (value == nullptr) return invalid(kernel, std::string("needs param '") + name + "'");
  if (!std::isfinite(*value)) return invalid(kernel, std::string("param '") + name + "' must be finite");
  out = *value;
  return {};
}

Status float_param(const char* kernel, const char* name, double value) {
  if (!std::isfinite(value)) return invalid(kernel, std::string("param '") + name + "' must be finite");
  if (std::fabs(value) > std::numeric_limits<float>::max()) {
    char shown[32];
    std::snprintf(shown, sizeof shown, "%g", value);
    return invalid(kernel, std::string("param '") + name + "' is " + shown +
                               ", beyond float32's range (|value| <= 3.4e38): the kernel computes in float32");
  }
  return {};
}

}  // namespace bridge::worker::checks
