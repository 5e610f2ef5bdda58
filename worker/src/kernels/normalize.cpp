// normalize: affine map per channel, out[..., c] = x[..., c] * scale[c] + shift[c], for f32 x whose
// last axis is the channel (e.g. an image [H,W,C]; mean/std normalisation is scale = 1/std,
// shift = -mean/std). With x alone (as a pipeline stage, whose only inputs are the previous
// stage's outputs), params `scale` (default 1) and `shift` (default 0) apply to every channel.
#include <cmath>

#include <tbb/parallel_for.h>

#include "checks.hpp"

namespace bridge::worker {
namespace {

constexpr const char* kName = "normalize";

Status plan(const KernelArgs& args, std::vector<OutputSpec>& outputs) {
  if (args.inputs.size() != 1)
    BRIDGE_RETURN_IF_ERROR(checks::input_count(kName, args, 3, "x, scale, shift (or x alone)"));
  const Tensor& x = args.inputs[0];
  BRIDGE_RETURN_IF_ERROR(checks::dtype_is(kName, x, "x", DType::kF32));
  if (x.shape().empty())
    return {StatusCode::kInvalidArgument, std::string(kName) + ": input 'x' must have rank >= 1 (channels last)"};
  if (args.inputs.size() == 1) {
    for (const char* name : {"scale", "shift"})
      if (const double* v = args.find_param(name); v != nullptr && !std::isfinite(*v))
        return {StatusCode::kInvalidArgument, std::string(kName) + ": param '" + name + "' must be finite"};
    outputs.push_back({"out", DType::kF32, x.shape()});
    return {};
  }
  for (const char* name : {"scale", "shift"})
    if (args.find_param(name) != nullptr)
      return {StatusCode::kInvalidArgument,
              std::string(kName) + ": param '" + name +
                  "' is given with scale and shift tensors; give them as tensors or as params, not both"};
  BRIDGE_RETURN_IF_ERROR(checks::dtype_is(kName, args.inputs[1], "scale", DType::kF32));
  BRIDGE_RETURN_IF_ERROR(checks::dtype_is(kName, args.inputs[2], "shift", DType::kF32));
  const Shape channels{x.shape().back()};
  for (std::size_t i : {1, 2})
    if (args.inputs[i].shape() != channels)
      return {StatusCode::kInvalidArgument, std::string(kName) + ": input '" + (i == 1 ? "scale" : "shift") +
                                                "' must have shape " + checks::shape_string(channels) +
                                                " (one value per channel of x), got " +
                                                checks::shape_string(args.inputs[i].shape())};
  outputs.push_back({"out", DType::kF32, x.shape()});
  return {};
}

void run_cpu(const KernelArgs& args, std::span<Tensor> outputs) {
  const auto x = args.inputs[0].values<float>();
  const auto c = static_cast<std::size_t>(args.inputs[0].shape().back());
  if (c == 0) return;
  std::vector<float> uniform_scale, uniform_shift;  // x alone: the params, for every channel
  if (args.inputs.size() == 1) {
    const double* sc = args.find_param("scale");
    const double* sh = args.find_param("shift");
    uniform_scale.assign(c, sc ? static_cast<float>(*sc) : 1.0f);
    uniform_shift.assign(c, sh ? static_cast<float>(*sh) : 0.0f);
  }
  const float* scale = args.inputs.size() == 1 ? uniform_scale.data() : args.inputs[1].values<float>().data();
  const float* shift = args.inputs.size() == 1 ? uniform_shift.data() : args.inputs[2].values<float>().data();
  float* out = outputs[0].mutable_values<float>().data();
  const std::size_t pixels = x.size() / c;
  tbb::parallel_for(tbb::blocked_range<std::size_t>(0, pixels, 4096), [&](const tbb::blocked_range<std::size_t>& r) {
    for (std::size_t p = r.begin(); p < r.end(); ++p)
      for (std::size_t k = 0; k < c; ++k) out[p * c + k] = x[p * c + k] * scale[k] + shift[k];
  });
}

KernelSpec make_spec() {
  return {kName,
          "x:f32[...,C], scale:f32[C], shift:f32[C] (or x and params scale, shift) -> x*scale + shift per channel",
          plan,
          run_cpu,
          /*batchable=*/false,
          /*params=*/{"scale", "shift"}};
}
BRIDGE_REGISTER_KERNEL(make_spec);

}  // namespace
}  // namespace bridge::worker
