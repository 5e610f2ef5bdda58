// saxpy: out = alpha * x + y, float32, any shape (x and y alike); param alpha.
#include <tbb/parallel_for.h>

#include "checks.hpp"
#include "vector_clones.hpp"

namespace bridge::worker {
namespace {

constexpr const char* kName = "saxpy";

Status plan(const KernelArgs& args, std::vector<OutputSpec>& outputs) {
  double alpha = 0;
  BRIDGE_RETURN_IF_ERROR(checks::input_count(kName, args, 2, "x, y"));
  BRIDGE_RETURN_IF_ERROR(checks::dtype_is(kName, args.inputs[0], "x", DType::kF32));
  BRIDGE_RETURN_IF_ERROR(checks::dtype_is(kName, args.inputs[1], "y", DType::kF32));
  BRIDGE_RETURN_IF_ERROR(checks::same_shape(kName, args.inputs[0], "x", args.inputs[1], "y"));
  BRIDGE_RETURN_IF_ERROR(checks::required_param(kName, args, "alpha", alpha));
  BRIDGE_RETURN_IF_ERROR(checks::float_param(kName, "alpha", alpha));
  outputs.push_back({"out", DType::kF32, args.inputs[0].shape()});
  return {};
}

BRIDGE_VECTOR_CLONES
void saxpy_range(float alpha, const float* __restrict x, const float* __restrict y, float* __restrict out,
                 std::size_t begin, std::size_t end) {
  for (std::size_t i = begin; i < end; ++i) out[i] = alpha * x[i] + y[i];
}

void run_cpu(const KernelArgs& args, std::span<Tensor> outputs) {
  const auto alpha = static_cast<float>(*args.find_param("alpha"));
  const float* x = args.inputs[0].values<float>().data();
  const float* y = args.inputs[1].values<float>().data();
  float* out = outputs[0].mutable_values<float>().data();
  const std::size_t n = outputs[0].values<float>().size();
  tbb::parallel_for(tbb::blocked_range<std::size_t>(0, n, 16384), [=](const tbb::blocked_range<std::size_t>& r) {
    saxpy_range(alpha, x, y, out, r.begin(), r.end());
  });
}

KernelSpec make_spec() {
  return {.name = kName,
          .summary = "x:f32[*], y:f32[*], param alpha -> out = alpha*x + y",
          .plan = plan,
          .run_cpu = run_cpu,
          .batchable = true,
          .params = {"alpha"},
          .writes_every_output = true,
          .bytes_bound = true};
}
BRIDGE_REGISTER_KERNEL(make_spec);

}  // namespace
}  // namespace bridge::worker
