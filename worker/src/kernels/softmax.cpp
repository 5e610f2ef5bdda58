// softmax: row-wise softmax along the last axis of a float32 tensor of rank >= 1.
// Numerically stable: each row is shifted by its maximum before exponentiation.
//
// CPU implementation: one pass for the row's maximum, one that writes exp(x - max) and sums it, one
// that scales; a row is in cache after the first. exp is a polynomial (std::exp is a call per
// element): written for AVX-512, where it is most of the kernel's time, and elsewhere in scalar code
// the compiler vectorises. About 2 ulp either way, within float's rounding of the result.
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>

#include <tbb/parallel_for.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "checks.hpp"
#include "cpu_isa.hpp"
#include "vector_clones.hpp"

namespace bridge::worker {
namespace {

constexpr const char* kName = "softmax";
constexpr std::size_t kSumBlock = 1024;

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

// exp(x) for x <= 0 (a value less its row's maximum): 2^n * e^r with n = round(x / ln 2) and
// |r| <= ln 2 / 2, e^r by a degree-6 polynomial (Cephes' expf coefficients), 2^n put into the
// exponent bits. Below -86.5 (where 2^n would leave the normal range) the result, under 3e-38, is
// taken as 0; a NaN stays NaN.
inline float exp_nonpositive(float x) {
  constexpr float kLowest = -86.5f;
  const float clamped = std::max(x, kLowest);
  constexpr float kRound = 12582912.0f;  // 1.5 * 2^23: adding and subtracting it rounds to an integer
  const float n = (clamped * 1.44269504088896341f + kRound) - kRound;
  float r = clamped - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const float scaled = std::bit_cast<float>(std::bit_cast<std::int32_t>(p) + (static_cast<std::int32_t>(n) << 23));
  return x < kLowest ? 0.0f : (x != x ? x : scaled);
}

// exp(x[j] - max) into y[j] for j < n, and their sum: each lane sums its own values, in float.
using ExpSumFn = float (*)(const float* x, float* y, std::size_t n, float max);

BRIDGE_VECTOR_CLONES
float exp_sum_portable(const float* __restrict x, float* __restrict y, std::size_t n, float max) {
  float sum = 0;
#pragma omp simd reduction(+ : sum)
  for (std::size_t j = 0; j < n; ++j) {
    y[j] = exp_nonpositive(x[j] - max);
    sum += y[j];
  }
  return sum;
}

#if BRIDGE_KERNELS_PICK_ISA
// GCC 12's own intrinsics start from _mm512_undefined_ps(), which its -Wuninitialized reports (GCC
// bug 105593, fixed in 13): a false positive, silenced for these two functions only.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
// The same exp as exp_nonpositive, 16 lanes at once, with what AVX-512 has for its two costly steps:
// vrndscaleps rounds x / ln 2 to n, and vscalefps multiplies by 2^n, flushing to 0 what falls below
// float's range and passing a NaN on, so no compare and blend per element is left (GCC's
// vectorisation of the scalar code takes about 27 instructions per 16 values, this one 14: the
// kernel went from 0.29 to 0.21 ns per element on one core, in cache). Below -110 the result is 0
// (e^-104 already rounds to 0); -inf, a masked entry, is 0 exactly.
[[gnu::target("arch=x86-64-v4")]] inline __m512 exp_nonpositive_avx512(__m512 x) {
  const __m512 d = _mm512_max_ps(_mm512_set1_ps(-110.0f), x);  // x second: a NaN x is returned as it is
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(d, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), d);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_fmadd_ps(_mm512_set1_ps(1.9875691500e-4f), r, _mm512_set1_ps(1.3981999507e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
  p = _mm512_fmadd_ps(_mm512_mul_ps(p, r), r, _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
  return _mm512_scalef_ps(p, n);
}

[[gnu::target("arch=x86-64-v4")]] float exp_sum_avx512(const float* x, float* y, std::size_t n, float max) {
  const __m512 shift = _mm512_set1_ps(max);
  __m512 sum = _mm512_setzero_ps();
  std::size_t j = 0;
  for (; j + 16 <= n; j += 16) {
    const __m512 e = exp_nonpositive_avx512(_mm512_sub_ps(_mm512_loadu_ps(x + j), shift));
    _mm512_storeu_ps(y + j, e);
    sum = _mm512_add_ps(sum, e);
  }
  if (j < n) {  // the last 1..15 values, under a mask: nothing is read or written past the row
    const auto lanes = static_cast<__mmask16>((1u << (n - j)) - 1);
    const __m512 e = exp_nonpositive_avx512(_mm512_sub_ps(_mm512_maskz_loadu_ps(lanes, x + j), shift));
    _mm512_mask_storeu_ps(y + j, lanes, e);
    sum = _mm512_mask_add_ps(sum, lanes, sum, e);
  }
  return _mm512_reduce_add_ps(sum);
}
#pragma GCC diagnostic pop
#endif

ExpSumFn choose_exp_sum() {
#if BRIDGE_KERNELS_PICK_ISA
  if (kernel_isa() == CpuIsa::kAvx512) return exp_sum_avx512;
#endif
  return exp_sum_portable;
}

BRIDGE_VECTOR_CLONES
void softmax_rows(const float* __restrict in, float* __restrict out, std::size_t row_begin, std::size_t row_end,
                  std::size_t cols, ExpSumFn exp_sum) {
  for (std::size_t row = row_begin; row < row_end; ++row) {
    const float* __restrict xi = in + row * cols;
    float* __restrict yi = out + row * cols;
    float max = -std::numeric_limits<float>::infinity();
    // std::max's reference defeats GCC 12's vectoriser here (the loop stayed scalar, bound by the
    // latency of one maximum after another: most of the kernel's time); the comparison it stands
    // for does not. A NaN is passed over here and makes the row NaN below.
#pragma omp simd reduction(max : max)
    for (std::size_t j = 0; j < cols; ++j) max = max < xi[j] ? xi[j] : max;
    // Summed in float for a block, the blocks in double: long rows keep a double's accuracy.
    double sum = 0;
    for (std::size_t block = 0; block < cols; block += kSumBlock)
      sum += exp_sum(xi + block, yi + block, std::min(kSumBlock, cols - block), max);
    const auto scale = static_cast<float>(1.0 / sum);
#pragma omp simd
    for (std::size_t j = 0; j < cols; ++j) yi[j] *= scale;
  }
}

void run_cpu(const KernelArgs& args, std::span<Tensor> outputs) {
  const Tensor& x = args.inputs[0];
  const auto cols = static_cast<std::size_t>(x.shape().back());
  if (cols == 0) return;
  const std::size_t rows = x.values<float>().size() / cols;
  const float* in = x.values<float>().data();
  float* out = outputs[0].mutable_values<float>().data();
  const std::size_t grain = std::max<std::size_t>(1, 16384 / cols);
  const ExpSumFn exp_sum = choose_exp_sum();
  tbb::parallel_for(tbb::blocked_range<std::size_t>(0, rows, grain), [=](const tbb::blocked_range<std::size_t>& r) {
    softmax_rows(in, out, r.begin(), r.end(), cols, exp_sum);
  });
}

KernelSpec make_spec() {
  return {.name = kName,
          .summary = "x:f32[...,N] -> out:f32[...,N], softmax of each row",
          .plan = plan,
          .run_cpu = run_cpu,
          .batchable = true,
          .writes_every_output = true,
          .bytes_bound = true,
          // About 44 ns a row of one value (8192 such rows took 360 us on the 2-vCPU EPYC), against
          // about 0.1 ns a byte for long rows: a row costs about as much as 512 bytes.
          .inline_bytes_per_row = 512};
}
BRIDGE_REGISTER_KERNEL(make_spec);

}  // namespace
}  // namespace bridge::worker
