// matmul: c[M,N] = a[M,K] x b[K,N], float32, row-major.
//
// CPU implementation: 2-D tiles of c in parallel; within a tile, K is walked in panels so that the
// panel of b stays in cache, and the innermost loop runs along a row of b and c (unit stride) so the
// compiler vectorises it.
#include <algorithm>

#include <tbb/blocked_range2d.h>
#include <tbb/parallel_for.h>

#include "checks.hpp"

namespace bridge::worker {
namespace {

constexpr const char* kName = "matmul";
constexpr std::size_t kRowTile = 32;
constexpr std::size_t kColTile = 256;
constexpr std::size_t kDepthPanel = 256;

Status plan(const KernelArgs& args, std::vector<OutputSpec>& outputs) {
  BRIDGE_RETURN_IF_ERROR(checks::input_count(kName, args, 2, "a, b"));
  const Tensor& a = args.inputs[0];
  const Tensor& b = args.inputs[1];
  BRIDGE_RETURN_IF_ERROR(checks::dtype_is(kName, a, "a", DType::kF32));
  BRIDGE_RETURN_IF_ERROR(checks::dtype_is(kName, b, "b", DType::kF32));
  BRIDGE_RETURN_IF_ERROR(checks::rank_is(kName, a, "a", 2));
  BRIDGE_RETURN_IF_ERROR(checks::rank_is(kName, b, "b", 2));
  if (a.shape()[1] != b.shape()[0])
    return {StatusCode::kInvalidArgument, std::string(kName) + ": inner dimensions differ: a is " +
                                              checks::shape_string(a.shape()) + ", b is " +
                                              checks::shape_string(b.shape()) + " (need a[M,K] x b[K,N])"};
  outputs.push_back({"c", DType::kF32, Shape{a.shape()[0], b.shape()[1]}});
  return {};
}

void run_cpu(const KernelArgs& args, std::span<Tensor> outputs) {
  const auto m = static_cast<std::size_t>(args.inputs[0].shape()[0]);
  const auto k = static_cast<std::size_t>(args.inputs[0].shape()[1]);
  const auto n = static_cast<std::size_t>(args.inputs[1].shape()[1]);
  const float* a = args.inputs[0].values<float>().data();
  const float* b = args.inputs[1].values<float>().data();
  float* c = outputs[0].mutable_values<float>().data();  // zero-filled by the worker
  tbb::parallel_for(
      tbb::blocked_range2d<std::size_t>(0, m, kRowTile, 0, n, kColTile),
      [=](const tbb::blocked_range2d<std::size_t>& tile) {
        const std::size_t j0 = tile.cols().begin(), j1 = tile.cols().end();
        for (std::size_t p0 = 0; p0 < k; p0 += kDepthPanel) {
          const std::size_t p1 = std::min(k, p0 + kDepthPanel);
          for (std::size_t i = tile.rows().begin(); i < tile.rows().end(); ++i) {
            float* __restrict ci = c + i * n;
            const float* ai = a + i * k;
            for (std::size_t p = p0; p < p1; ++p) {
              const float aip = ai[p];
              const float* __restrict bp = b + p * n;
              for (std::size_t j = j0; j < j1; ++j) ci[j] += aip * bp[j];
            }
          }
        }
      });
}

KernelSpec make_spec() { return {kName, "a:f32[M,K], b:f32[K,N] -> c:f32[M,N] = a x b", plan, run_cpu}; }
BRIDGE_REGISTER_KERNEL(make_spec);

}  // namespace
}  // namespace bridge::worker
