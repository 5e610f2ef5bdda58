// matmul: c[M,N] = a[M,K] x b[K,N], float32, row-major.
//
// CPU implementation: 2-D tiles of c in parallel; within a tile, K is walked in panels so that the
// panel of b stays in cache. The micro-kernel keeps a 4 x 32 block of c in registers across the
// panel, so each vector of b loaded from cache feeds four fused multiply-adds and c is touched once
// per panel; it runs along rows of b and c (unit stride) so that the compiler vectorises it. It is compiled three times
// (target_clones): AVX-512, AVX2+FMA and baseline x86-64, and the best one the CPU has is picked at load time, so that
// one portable binary gets the wide vectors where they exist. docs/performance.md compares it with OpenBLAS.
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

constexpr std::size_t kMicroRows = 4;
constexpr std::size_t kMicroCols = 32;

// c[i0:i1, j0:j1] += a[i0:i1, p0:p1] x b[p0:p1, j0:j1]; rows of a and c have strides k and n.
// Full 4 x 32 blocks of c are accumulated in local arrays across the whole panel: the compiler keeps
// them in vector registers (8 with AVX-512), so the inner loop is two loads of b, four broadcasts of
// a and eight fused multiply-adds, with no load or store of c. Edges take the plain loop.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#endif
void tile(const float* __restrict a, const float* __restrict b, float* __restrict c, std::size_t k, std::size_t n,
          std::size_t i0, std::size_t i1, std::size_t j0, std::size_t j1, std::size_t p0, std::size_t p1) {
  std::size_t i = i0;
  for (; i + kMicroRows <= i1; i += kMicroRows) {
    const float* a0 = a + i * k;
    std::size_t j = j0;
    for (; j + kMicroCols <= j1; j += kMicroCols) {
      float acc[kMicroRows][kMicroCols] = {};
      for (std::size_t p = p0; p < p1; ++p) {
        const float* __restrict bp = b + p * n + j;
        for (std::size_t r = 0; r < kMicroRows; ++r) {
          const float x = a0[r * k + p];
          for (std::size_t q = 0; q < kMicroCols; ++q) acc[r][q] += x * bp[q];
        }
      }
      for (std::size_t r = 0; r < kMicroRows; ++r)
        for (std::size_t q = 0; q < kMicroCols; ++q) c[(i + r) * n + j + q] += acc[r][q];
    }
    for (std::size_t r = 0; r < kMicroRows && j < j1; ++r) {  // the columns past the last full block
      float* __restrict ci = c + (i + r) * n;
      for (std::size_t p = p0; p < p1; ++p) {
        const float x = a0[r * k + p];
        const float* __restrict bp = b + p * n;
        for (std::size_t q = j; q < j1; ++q) ci[q] += x * bp[q];
      }
    }
  }
  for (; i < i1; ++i) {  // the last rows, one at a time
    float* __restrict ci = c + i * n;
    const float* ai = a + i * k;
    for (std::size_t p = p0; p < p1; ++p) {
      const float x = ai[p];
      const float* __restrict bp = b + p * n;
      for (std::size_t q = j0; q < j1; ++q) ci[q] += x * bp[q];
    }
  }
}

void run_cpu(const KernelArgs& args, std::span<Tensor> outputs) {
  const auto m = static_cast<std::size_t>(args.inputs[0].shape()[0]);
  const auto k = static_cast<std::size_t>(args.inputs[0].shape()[1]);
  const auto n = static_cast<std::size_t>(args.inputs[1].shape()[1]);
  const float* a = args.inputs[0].values<float>().data();
  const float* b = args.inputs[1].values<float>().data();
  float* c = outputs[0].mutable_values<float>().data();
  tbb::parallel_for(tbb::blocked_range2d<std::size_t>(0, m, kRowTile, 0, n, kColTile),
                    [=](const tbb::blocked_range2d<std::size_t>& r) {
                      // The panels accumulate into the tile: zeroed here, while it is in this
                      // core's cache, rather than by the worker in a pass over all of c.
                      for (std::size_t i = r.rows().begin(); i < r.rows().end(); ++i)
                        std::fill(c + i * n + r.cols().begin(), c + i * n + r.cols().end(), 0.0f);
                      for (std::size_t p0 = 0; p0 < k; p0 += kDepthPanel)
                        tile(a, b, c, k, n, r.rows().begin(), r.rows().end(), r.cols().begin(), r.cols().end(), p0,
                             std::min(k, p0 + kDepthPanel));
                    });
}

KernelSpec make_spec() {
  return {.name = kName,
          .summary = "a:f32[M,K], b:f32[K,N] -> c:f32[M,N] = a x b",
          .plan = plan,
          .run_cpu = run_cpu,
          .writes_every_output = true};
}
BRIDGE_REGISTER_KERNEL(make_spec);

}  // namespace
}  // namespace bridge::worker
