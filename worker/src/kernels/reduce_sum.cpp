// reduce_sum: the sum of all elements of a float32 tensor, as a rank-0 float32 tensor.
// Accumulates in double per block, so the result is the correctly rounded float of a sum whose
// error is far below float precision for any input that fits in memory.
#include <tbb/blocked_range.h>
#include <tbb/parallel_reduce.h>

#include "checks.hpp"

namespace bridge::worker {
namespace {

constexpr const char* kName = "reduce_sum";

Status plan(const KernelArgs& args, std::vector<OutputSpec>& outputs) {
  BRIDGE_RETURN_IF_ERROR(checks::input_count(kName, args, 1, "x"));
  BRIDGE_RETURN_IF_ERROR(checks::dtype_is(kName, args.inputs[0], "x", DType::kF32));
  outputs.push_back({"sum", DType::kF32, Shape{}});
  return {};
}

void run_cpu(const KernelArgs& args, std::span<Tensor> outputs) {
  const auto x = args.inputs[0].values<float>();
  const double sum = tbb::parallel_reduce(
      tbb::blocked_range<std::size_t>(0, x.size(), 16384), 0.0,
      [&](const tbb::blocked_range<std::size_t>& r, double partial) {
        for (std::size_t i = r.begin(); i < r.end(); ++i) partial += x[i];
        return partial;
      },
      [](double a, double b) { return a + b; });
  outputs[0].mutable_values<float>()[0] = static_cast<float>(sum);
}

KernelSpec make_spec() { return {kName, "x:f32[*] -> sum:f32[] (sum of all elements)", plan, run_cpu}; }
BRIDGE_REGISTER_KERNEL(make_spec);

}  // namespace
}  // namespace bridge::worker
