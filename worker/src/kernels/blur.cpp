// blur: Gaussian blur of an f32 image [H,W] or [H,W,C] with param sigma (pixels), as two 1-D passes
// (rows, then columns) with a normalised kernel of radius ceil(3 sigma); borders clamp to the edge.
#include <algorithm>
#include <cmath>

#include <tbb/parallel_for.h>

#include "image.hpp"
#include "image_math.hpp"

namespace bridge::worker {
namespace {

constexpr const char* kName = "blur";
constexpr double kMinSigma = 0.01;
constexpr double kMaxSigma = 64;

Status plan(const KernelArgs& args, std::vector<OutputSpec>& outputs) {
  BRIDGE_RETURN_IF_ERROR(checks::input_count(kName, args, 1, "image"));
  image::Geometry g;
  BRIDGE_RETURN_IF_ERROR(image::geometry(kName, args, 0, g));
  double sigma = 0;
  BRIDGE_RETURN_IF_ERROR(checks::required_param(kName, args, "sigma", sigma));
  // Below kMinSigma the weights' sigma^2 can underflow to 0 (NaN pixels); the blur is the identity there anyway.
  if (!(sigma >= kMinSigma && sigma <= kMaxSigma))
    return {StatusCode::kInvalidArgument, std::string(kName) + ": param 'sigma' must be between 0.01 and 64"};
  outputs.push_back({"image", DType::kF32, args.inputs[0].shape()});
  return {};
}

void run_cpu(const KernelArgs& args, std::span<Tensor> outputs) {
  image::Geometry g;
  (void)image::geometry(kName, args, 0, g);
  const std::vector<float> w = image::gaussian_weights(*args.find_param("sigma"));
  const auto radius = static_cast<std::int64_t>(w.size() / 2);
  const std::int64_t h = g.height, wd = g.width, c = g.channels;
  const float* src = args.inputs[0].values<float>().data();
  float* dst = outputs[0].mutable_values<float>().data();
  std::vector<float> rows(static_cast<std::size_t>(h * wd * c));
  tbb::parallel_for(std::int64_t{0}, h, [&](std::int64_t y) {  // horizontal pass
    for (std::int64_t x = 0; x < wd; ++x)
      for (std::int64_t k = 0; k < c; ++k) {
        float acc = 0;
        for (std::int64_t t = -radius; t <= radius; ++t)
          acc += w[static_cast<std::size_t>(t + radius)] * src[(y * wd + std::clamp(x + t, std::int64_t{0}, wd - 1)) * c + k];
        rows[static_cast<std::size_t>((y * wd + x) * c + k)] = acc;
      }
  });
  tbb::parallel_for(std::int64_t{0}, h, [&](std::int64_t y) {  // vertical pass
    for (std::int64_t x = 0; x < wd; ++x)
      for (std::int64_t k = 0; k < c; ++k) {
        float acc = 0;
        for (std::int64_t t = -radius; t <= radius; ++t)
          acc += w[static_cast<std::size_t>(t + radius)] *
                 rows[static_cast<std::size_t>((std::clamp(y + t, std::int64_t{0}, h - 1) * wd + x) * c + k)];
        dst[(y * wd + x) * c + k] = acc;
      }
  });
}

KernelSpec make_spec() { return {kName, "image:f32[H,W(,C)], param sigma -> separable Gaussian blur", plan, run_cpu, /*batchable=*/false, /*params=*/{"sigma"}}; }
BRIDGE_REGISTER_KERNEL(make_spec);

}  // namespace
}  // namespace bridge::worker
