// vector_add: c = a + b, element-wise, float32, any shape (a and b alike).
#include <tbb/parallel_for.h>

#include "checks.hpp"
#include "vector_clones.hpp"

namespace bridge::worker {
namespace {

constexpr const char* kName = "vector_add";

Status plan(const KernelArgs& args, std::vector<OutputSpec>& outputs) {
  BRIDGE_RETURN_IF_ERROR(checks::input_count(kName, args, 2, "a, b"));
  BRIDGE_RETURN_IF_ERROR(checks::dtype_is(kName, args.inputs[0], "a", DType::kF32));
  BRIDGE_RETURN_IF_ERROR(checks::dtype_is(kName, args.inputs[1], "b", DType::kF32));
  BRIDGE_RETURN_IF_ERROR(checks::same_shape(kName, args.inputs[0], "a", args.inputs[1], "b"));
  outputs.push_back({"c", DType::kF32, args.inputs[0].shape()});
  return {};
}

BRIDGE_VECTOR_CLONES
void add_range(const float* __restrict a, const float* __restrict b, float* __restrict c, std::size_t begin,
               std::size_t end) {
  for (std::size_t i = begin; i < end; ++i) c[i] = a[i] + b[i];
}

void run_cpu(const KernelArgs& args, std::span<Tensor> outputs) {
  const float* a = args.inputs[0].values<float>().data();
  const float* b = args.inputs[1].values<float>().data();
  float* c = outputs[0].mutable_values<float>().data();
  const std::size_t n = outputs[0].values<float>().size();
  // 64 KiB of output per task: large enough to amortise scheduling, small enough to balance.
  tbb::parallel_for(tbb::blocked_range<std::size_t>(0, n, 16384),
                    [=](const tbb::blocked_range<std::size_t>& r) { add_range(a, b, c, r.begin(), r.end()); });
}

KernelSpec make_spec() {
  return {.name = kName,
          .summary = "a:f32[*], b:f32[*] -> c = a + b",
          .plan = plan,
          .run_cpu = run_cpu,
          .batchable = true,
          .writes_every_output = true,
          .bytes_bound = true};
}
BRIDGE_REGISTER_KERNEL(make_spec);

}  // namespace
}  // namespace bridge::worker
