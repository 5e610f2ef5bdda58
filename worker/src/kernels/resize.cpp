// resize: bilinear resampling of an f32 image [H,W] or [H,W,C] to params height x width.
// Pixel centres are aligned (half-pixel convention, as OpenCV's INTER_LINEAR and PyTorch's
// align_corners=False); samples outside the image clamp to the edge.
#include <algorithm>
#include <cmath>

#include <tbb/parallel_for.h>

#include "image.hpp"
#include "bridge/worker/image_math.hpp"

namespace bridge::worker {
namespace {

constexpr const char* kName = "resize";
constexpr double kMaxSide = 65536;

Status plan(const KernelArgs& args, std::vector<OutputSpec>& outputs) {
  BRIDGE_RETURN_IF_ERROR(checks::input_count(kName, args, 1, "image"));
  image::Geometry in;
  BRIDGE_RETURN_IF_ERROR(image::geometry(kName, args, 0, in));
  std::int64_t height = 0, width = 0;
  BRIDGE_RETURN_IF_ERROR(image::whole_param(kName, args, "height", 1, kMaxSide, height));
  BRIDGE_RETURN_IF_ERROR(image::whole_param(kName, args, "width", 1, kMaxSide, width));
  if (in.height == 0 || in.width == 0)
    return {StatusCode::kInvalidArgument, std::string(kName) + ": input 'image' is empty; nothing to resample"};
  outputs.push_back(
      {"image", DType::kF32, image::shape_of({height, width, in.channels}, args.inputs[0].shape().size())});
  return {};
}

void run_cpu(const KernelArgs& args, std::span<Tensor> outputs) {
  image::Geometry in;
  (void)image::geometry(kName, args, 0, in);
  const std::int64_t out_h = outputs[0].shape()[0], out_w = outputs[0].shape()[1], c = in.channels;
  const float* src = args.inputs[0].values<float>().data();
  float* dst = outputs[0].mutable_values<float>().data();
  const std::vector<image::BilinearTap> rows = image::bilinear_taps(in.height, out_h);
  const std::vector<image::BilinearTap> cols = image::bilinear_taps(in.width, out_w);
  tbb::parallel_for(std::int64_t{0}, out_h, [&](std::int64_t y) {
    const image::BilinearTap ty = rows[static_cast<std::size_t>(y)];
    for (std::int64_t x = 0; x < out_w; ++x) {
      const image::BilinearTap tx = cols[static_cast<std::size_t>(x)];
      const float* r0 = src + ty.lo * in.width * c;
      const float* r1 = src + ty.hi * in.width * c;
      for (std::int64_t k = 0; k < c; ++k) {
        const float top = r0[tx.lo * c + k] + tx.weight * (r0[tx.hi * c + k] - r0[tx.lo * c + k]);
        const float bottom = r1[tx.lo * c + k] + tx.weight * (r1[tx.hi * c + k] - r1[tx.lo * c + k]);
        dst[(y * out_w + x) * c + k] = top + ty.weight * (bottom - top);
      }
    }
  });
}

KernelSpec make_spec() {
  return {kName,
          "image:f32[H,W(,C)], params height, width -> bilinear resize",
          plan,
          run_cpu,
          /*batchable=*/false,
          /*params=*/{"height", "width"}};
}
BRIDGE_REGISTER_KERNEL(make_spec);

}  // namespace
}  // namespace bridge::worker
