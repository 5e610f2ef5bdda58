// reduce_sum: the sum of all elements of a float32 tensor, as a rank-0 float32 tensor.
// Accumulates in double per block, so the result is the correctly rounded float of a sum whose
// error is far below float precision for any input that fits in memory.
//
// CPU implementation: each block keeps 16 independent double accumulators, so that the additions
// do not wait on each other (one chain runs at the adder's latency: a quarter of memory's pace) and
// the compiler vectorises them.
#include <tbb/blocked_range.h>
#include <tbb/parallel_reduce.h>

#include "checks.hpp"
#include "vector_clones.hpp"

namespace bridge::worker {
namespace {

constexpr const char* kName = "reduce_sum";
constexpr std::size_t kLanes = 16;

Status plan(const KernelArgs& args, std::vector<OutputSpec>& outputs) {
  BRIDGE_RETURN_IF_ERROR(checks::input_count(kName, args, 1, "x"));
  BRIDGE_RETURN_IF_ERROR(checks::dtype_is(kName, args.inputs[0], "x", DType::kF32));
  outputs.push_back({"sum", DType::kF32, Shape{}});
  return {};
}

BRIDGE_VECTOR_CLONES
double block_sum(const float* __restrict x, std::size_t begin, std::size_t end) {
  double lanes[kLanes] = {};
  std::size_t i = begin;
  for (; i + kLanes <= end; i += kLanes)
    for (std::size_t q = 0; q < kLanes; ++q) lanes[q] += x[i + q];
  double sum = 0;
  for (double lane : lanes) sum += lane;
  for (; i < end; ++i) sum += x[i];
  return sum;
}

void run_cpu(const KernelArgs& args, std::span<Tensor> outputs) {
  const auto x = args.inputs[0].values<float>();
  const double sum = tbb::parallel_reduce(
      tbb::blocked_range<std::size_t>(0, x.size(), 16384), 0.0,
      [&](const tbb::blocked_range<std::size_t>& r, double partial) {
        return partial + block_sum(x.data(), r.begin(), r.end());
      },
      [](double a, double b) { return a + b; });
  outputs[0].mutable_values<float>()[0] = static_cast<float>(sum);
}

KernelSpec make_spec() {
  return {.name = kName,
          .summary = "x:f32[*] -> sum:f32[] (sum of all elements)",
          .plan = plan,
          .run_cpu = run_cpu,
          .writes_every_output = true,
          .bytes_bound = true};
}
BRIDGE_REGISTER_KERNEL(make_spec);

}  // namespace
}  // namespace bridge::worker
