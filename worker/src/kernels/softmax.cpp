// softmax: row-wise softmax along the last axis of a float32 tensor of rank >= 1.
// Numerically stable: each row is shifted by its maximum before exponentiation.
#include <algorithm>
#include <cmath>

#include <tbb/parallel_for.h>

#include "checks.hpp"

namespace bridge::worker {
namespace {

constexpr const char* kName = "softmax";

Status plan(const KernelArgs& args, std::vector<OutputSpec>& outputs) {
  BRIDGE_RETURN_IF_ERROR(checks::input_count(kName, args, 1, "x"));
  const Tensor& x = args.inputs[0];
  BRIDGE_RETURN_IF_ERROR(checks::dtype_is(kName, x, "x", DType::kF32));
  if (x.shape().empty())
    return {StatusCode::kInvalidArgument,
            std::string(kName) + ": input 'x' must have rank >= 1 (rows along the last axis)"};
  outputs.push_back({"out", DType::kF32, x.shape()});
  return {};
}

void run_cpu(const KernelArgs& args, std::span<Tensor> outputs) {
  const Tensor& x = args.inputs[0];
  const auto cols = static_cast<std::size_t>(x.shape().back());
  if (cols == 0) return;
  const std::size_t rows = x.values<float>().size() / cols;
  const float* in = x.values<float>().data();
  float* out = outputs[0].mutable_values<float>().data();
  const std::size_t grain = std::max<std::size_t>(1, 16384 / cols);
  tbb::parallel_for(tbb::blocked_range<std::size_t>(0, rows, grain), [=](const tbb::blocked_range<std::size_t>& r) {
    for (std::size_t row = r.begin(); row < r.end(); ++row) {
      const float* xi = in + row * cols;
      float* yi = out + row * cols;
      const float max = *std::max_element(xi, xi + cols);
      double sum = 0;
      for (std::size_t j = 0; j < cols; ++j) {
        yi[j] = std::exp(xi[j] - max);
        sum += yi[j];
      }
      const auto scale = static_cast<float>(1.0 / sum);
      for (std::size_t j = 0; j < cols; ++j) yi[j] *= scale;
    }
  });
}

KernelSpec make_spec() { return {kName, "x:f32[...,N] -> out:f32[...,N], softmax of each row", plan, run_cpu,
                                    /*batchable=*/true}; }
BRIDGE_REGISTER_KERNEL(make_spec);

}  // namespace
}  // namespace bridge::worker
