#include "image.hpp"

#include <cmath>

namespace bridge::worker::image {

Status geometry(const char* kernel, const KernelArgs& args, std::size_t index, Geometry& out) {
  const Tensor& t = args.inputs[index];
  BRIDGE_RETURN_IF_ERROR(checks::dtype_is(kernel, t, "image", DType::kF32));
  if (t.shape().size() != 2 && t.shape().size() != 3)
    return {StatusCode::kInvalidArgument, std::string(kernel) + ": input 'image' must be [H,W] or [H,W,C], got " +
                                              checks::shape_string(t.shape())};
  out = {t.shape()[0], t.shape()[1], t.shape().size() == 3 ? t.shape()[2] : 1};
  return {};
}

Status whole_param(const char* kernel, const KernelArgs& args, const char* name, double min, double max,
                   std::int64_t& out) {
  double value = 0;
  BRIDGE_RETURN_IF_ERROR(checks::required_param(kernel, args, name, value));
  if (value != std::floor(value) || value < min || value > max)
    return {StatusCode::kInvalidArgument, std::string(kernel) + ": param '" + name + "' must be a whole number from " +
                                              std::to_string(static_cast<long long>(min)) + " to " +
                                              std::to_string(static_cast<long long>(max))};
  out = static_cast<std::int64_t>(value);
  return {};
}

Shape shape_of(const Geometry& g, std::size_t rank) {
  return rank == 2 ? Shape{g.height, g.width} : Shape{g.height, g.width, g.channels};
}

}  // namespace bridge::worker::image
