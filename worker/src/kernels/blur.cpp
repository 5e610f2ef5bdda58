// blur: Gaussian blur of an f32 image [H,W] or [H,W,C] with param sigma (pixels), as two 1-D passes
// (rows, then columns) with a normalised kernel of radius ceil(3 sigma); borders clamp to the edge.
#include <algorithm>
#include <cmath>

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>

#include "image.hpp"
#include "bridge/worker/image_math.hpp"

namespace bridge::worker {
namespace {

constexpr const char* kName = "blur";
constexpr double kMinSigma = 0.01;
constexpr double kMaxSigma = 64;
// At the largest sigma (radius 192) a chunk is about 1.6 M multiply-adds: a millisecond or so.
constexpr std::int64_t kValuesPerChunk = 4096;

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
  // Chunks of output values, not rows or pixels: an image of any shape (1 x 16M, or one pixel of
  // 16M channels) splits evenly, and a stop request (which cancels the chunks not started) takes
  // effect within one chunk's time.
  const tbb::blocked_range<std::int64_t> values(0, h * wd * c, kValuesPerChunk);
  tbb::parallel_for(values, [&](const tbb::blocked_range<std::int64_t>& range) {  // horizontal pass
    for (std::int64_t v = range.begin(); v < range.end(); ++v) {
      const std::int64_t p = v / c, k = v % c, y = p / wd, x = p % wd;
      float acc = 0;
      for (std::int64_t t = -radius; t <= radius; ++t)
        acc += w[static_cast<std::size_t>(t + radius)] *
               src[(y * wd + std::clamp(x + t, std::int64_t{0}, wd - 1)) * c + k];
      rows[static_cast<std::size_t>(v)] = acc;
    }
  });
  tbb::parallel_for(values, [&](const tbb::blocked_range<std::int64_t>& range) {  // vertical pass
    for (std::int64_t v = range.begin(); v < range.end(); ++v) {
      const std::int64_t p = v / c, k = v % c, y = p / wd, x = p % wd;
      float acc = 0;
      for (std::int64_t t = -radius; t <= radius; ++t)
        acc += w[static_cast<std::size_t>(t + radius)] *
               rows[static_cast<std::size_t>((std::clamp(y + t, std::int64_t{0}, h - 1) * wd + x) * c + k)];
      dst[v] = acc;
    }
  });
}

KernelSpec make_spec() {
  return {kName,
          "image:f32[H,W(,C)], param sigma -> separable Gaussian blur",
          plan,
          run_cpu,
          /*batchable=*/false,
          /*params=*/{"sigma"}};
}
BRIDGE_REGISTER_KERNEL(make_spec);

}  // namespace
}  // namespace bridge::worker
