// matmul: c[M,N] = a[M,K] x b[K,N], float32, row-major.
//
// CPU implementation: K is walked in panels of 256 rows of b, and each panel is copied ("packed")
// once into 256-column blocks that lie contiguously (rows 1 KiB apart), shared by every tile of c
// that uses it; then tiles of c (64 rows x one block) run in parallel. Unpacked, a panel of a wide b
// spans a page per row (4 KiB apart at N = 1024: 256 pages, four times the first-level TLB), and
// 1024 x 1024 ran at about half the speed of 512 x 512. The micro-kernel keeps an R x 32 block of c
// in registers across the panel, so each vector of b loaded from cache feeds R fused multiply-adds
// and c is touched once per panel; it runs along rows of b and c (unit stride) so that the compiler
// vectorises it. It is compiled for AVX-512 (R = 8), AVX2+FMA (R = 3) and baseline x86-64 (R = 4),
// and the best the CPU has is picked at run time, so that one portable binary gets the wide vectors
// where they exist. docs/performance.md compares it with OpenBLAS.
#include <algorithm>
#include <cstring>
#include <memory>

#include <tbb/blocked_range.h>
#include <tbb/blocked_range2d.h>
#include <tbb/parallel_for.h>

#include "checks.hpp"
#include "cpu_isa.hpp"

namespace bridge::worker {
namespace {

constexpr const char* kName = "matmul";
constexpr std::size_t kRowTile = 64;
constexpr std::size_t kColTile = 256;     // columns of a packed block of b
constexpr std::size_t kDepthPanel = 256;  // rows of b in a panel
constexpr std::size_t kGroupCols = 4096;  // columns packed at once: at most 4 MiB of packed b

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

// c[i0:i0+R, j0:j0+C] += a[i0:i0+R, p0:p1] x (a packed block of b), the R x C block of c held in
// local arrays across the whole panel: the compiler keeps them in vector registers, so the inner loop
// is C / lanes loads of b, R broadcasts of a and R * C / lanes fused multiply-adds, with no load or
// store of c. `a0` points at a[i0, p0], `row0` at the block's row p0, column j0; `c0` at c[i0, j0].
template <std::size_t R, std::size_t C>
[[gnu::always_inline]] inline void micro(const float* __restrict a0, std::size_t k, const float* __restrict row0,
                                         std::size_t ldb, std::size_t depth, float* __restrict c0, std::size_t n) {
  float acc[R][C] = {};
  for (std::size_t p = 0; p < depth; ++p) {
    const float* __restrict row = row0 + p * ldb;
    for (std::size_t r = 0; r < R; ++r) {
      const float x = a0[r * k + p];
      for (std::size_t q = 0; q < C; ++q) acc[r][q] += x * row[q];
    }
  }
  for (std::size_t r = 0; r < R; ++r)
    for (std::size_t q = 0; q < C; ++q) c0[r * n + q] += acc[r][q];
}

// Rows i .. i + R of c's columns j0 .. j0 + width: full blocks of C columns through micro<R, C>, the
// columns past the last full block through the plain loop. (A function, not a lambda: GCC compiles a
// lambda for the default instruction set, whatever its caller's target.)
template <std::size_t R, std::size_t C>
[[gnu::always_inline]] inline void row_block(const float* __restrict a, const float* __restrict bp, std::size_t ldb,
                                             float* __restrict c, std::size_t k, std::size_t n, std::size_t i,
                                             std::size_t j0, std::size_t p0, std::size_t depth, std::size_t width) {
  const std::size_t full = width / C * C;
  for (std::size_t j = 0; j < full; j += C) micro<R, C>(a + i * k + p0, k, bp + j, ldb, depth, c + i * n + j0 + j, n);
  for (std::size_t r = 0; r < R && full < width; ++r) {
    float* __restrict ci = c + (i + r) * n + j0;
    const float* ai = a + (i + r) * k + p0;
    for (std::size_t p = 0; p < depth; ++p) {
      const float x = ai[p];
      const float* __restrict row = bp + p * ldb;
      for (std::size_t q = full; q < width; ++q) ci[q] += x * row[q];
    }
  }
}

// c[i0:i1, j0:j1] += a[i0:i1, p0:p1] x b[p0:p1, j0:j1], with that block of b given packed: `bp`
// holds row p - p0, column j - j0 at (p - p0) * ldb + (j - j0). Rows of a and c have strides k and n.
// Blocks of R rows, then the rows past the last full block one at a time (micro<1, C>).
template <std::size_t R, std::size_t C>
[[gnu::always_inline]] inline void tile_with(const float* __restrict a, const float* __restrict bp, std::size_t ldb,
                                             float* __restrict c, std::size_t k, std::size_t n, std::size_t i0,
                                             std::size_t i1, std::size_t j0, std::size_t j1, std::size_t p0,
                                             std::size_t p1) {
  std::size_t i = i0;
  for (; i + R <= i1; i += R) row_block<R, C>(a, bp, ldb, c, k, n, i, j0, p0, p1 - p0, j1 - j0);
  for (; i < i1; ++i) row_block<1, C>(a, bp, ldb, c, k, n, i, j0, p0, p1 - p0, j1 - j0);
}

// One micro-kernel shape per instruction set, measured on this project's AVX-512 machine with each
// forced (BRIDGE_CPU_ISA), GFLOP/s at 256 / 512 / 1024: AVX-512 8 x 32 (16 zmm accumulators)
// 432 / 370 / 374, where 4 x 32 (8, the first version, which left the FMA units waiting on their own
// latency) gave 250-375 / 235 / 250 and OpenBLAS 290 / 350 / 390; AVX2 3 x 32 (12 ymm) 202 / 143 /
// 154, 4 x 32 (16: no register left for b) 144 / 102 / 106; baseline SSE2 4 x 32, 71-82. GCC kept
// 6 x 16 (AVX2) and 4 x 8 (SSE2) scalar: 32 columns is the width its vectoriser takes here.
using TileFn = void (*)(const float*, const float*, std::size_t, float*, std::size_t, std::size_t, std::size_t,
                        std::size_t, std::size_t, std::size_t, std::size_t, std::size_t);
#define BRIDGE_MATMUL_TILE(NAME, ATTRIBUTE, R, C)                                                               \
  ATTRIBUTE void NAME(const float* a, const float* bp, std::size_t ldb, float* c, std::size_t k, std::size_t n, \
                      std::size_t i0, std::size_t i1, std::size_t j0, std::size_t j1, std::size_t p0,           \
                      std::size_t p1) {                                                                         \
    tile_with<R, C>(a, bp, ldb, c, k, n, i0, i1, j0, j1, p0, p1);                                               \
  }
BRIDGE_MATMUL_TILE(tile_baseline, , 4, 32)
#if BRIDGE_KERNELS_PICK_ISA
BRIDGE_MATMUL_TILE(tile_avx2, [[gnu::target("arch=x86-64-v3")]], 3, 32)
BRIDGE_MATMUL_TILE(tile_avx512, [[gnu::target("arch=x86-64-v4")]], 8, 32)
#endif
#undef BRIDGE_MATMUL_TILE

// The best micro-kernel this CPU runs, or the lesser one BRIDGE_CPU_ISA names.
TileFn choose_tile() {
#if BRIDGE_KERNELS_PICK_ISA
  switch (kernel_isa()) {
    case CpuIsa::kAvx512: return tile_avx512;
    case CpuIsa::kAvx2: return tile_avx2;
    case CpuIsa::kBaseline: break;
  }
#endif
  return tile_baseline;
}

void run_cpu(const KernelArgs& args, std::span<Tensor> outputs) {
  const auto m = static_cast<std::size_t>(args.inputs[0].shape()[0]);
  const auto k = static_cast<std::size_t>(args.inputs[0].shape()[1]);
  const auto n = static_cast<std::size_t>(args.inputs[1].shape()[1]);
  const float* a = args.inputs[0].values<float>().data();
  const float* b = args.inputs[1].values<float>().data();
  float* c = outputs[0].mutable_values<float>().data();
  if (m == 0 || n == 0) return;
  if (k == 0) return std::fill(c, c + m * n, 0.0f);  // an empty sum
  // A b of one block's width is already laid out as its packed form would be: used as it is.
  // Otherwise block s of a group starts at s * kColTile * depth and holds its rows contiguously,
  // `width` floats each; the buffer is not zeroed, since every element is packed before it is read.
  const TileFn tile = choose_tile();
  const bool pack = n > kColTile;
  const std::unique_ptr<float[]> packed(pack ? new float[std::min(k, kDepthPanel) * std::min(n, kGroupCols)] : nullptr);
  for (std::size_t p0 = 0; p0 < k; p0 += kDepthPanel) {
    const std::size_t depth = std::min(kDepthPanel, k - p0);
    for (std::size_t g0 = 0; g0 < n; g0 += kGroupCols) {
      const std::size_t blocks = (std::min(kGroupCols, n - g0) + kColTile - 1) / kColTile;
      auto block_width = [&](std::size_t s) { return std::min(kColTile, n - g0 - s * kColTile); };
      const float* dst = pack ? packed.get() : b + p0 * n;
      if (pack)
        tbb::parallel_for(tbb::blocked_range<std::size_t>(0, blocks), [&](const tbb::blocked_range<std::size_t>& r) {
          for (std::size_t s = r.begin(); s < r.end(); ++s)
            for (std::size_t p = 0; p < depth; ++p)
              std::copy_n(b + (p0 + p) * n + g0 + s * kColTile, block_width(s),
                          packed.get() + s * kColTile * depth + p * block_width(s));
        });
      tbb::parallel_for(tbb::blocked_range2d<std::size_t>(0, m, kRowTile, 0, blocks, 1),
                        [&](const tbb::blocked_range2d<std::size_t>& r) {
                          for (std::size_t s = r.cols().begin(); s < r.cols().end(); ++s) {
                            const std::size_t j0 = g0 + s * kColTile, width = block_width(s);
                            // The first panel's tiles start from zero: zeroed here, while in this core's
                            // cache, rather than by the worker in a pass over all of c.
                            if (p0 == 0)
                              for (std::size_t i = r.rows().begin(); i < r.rows().end(); ++i)
                                std::fill(c + i * n + j0, c + i * n + j0 + width, 0.0f);
                            tile(a, dst + s * kColTile * depth, width, c, k, n, r.rows().begin(), r.rows().end(), j0,
                                 j0 + width, p0, p0 + depth);
                          }
                        });
    }
  }
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
