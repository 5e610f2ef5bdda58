// softmax: row-wise softmax along the last axis of a float32 tensor of rank >= 1.
// Numerically stable: each row is shifted by its maximum before exponentiation.
//
// CPU implementation: one pass for the row's maximum, one that writes exp(x - max) and sums it, one
// that scales; a row is in cache after the first. exp is a polynomial the compiler vectorises
// (std::exp is a call per element): about 2 ulp, within float's rounding of the result.
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>

#include <tbb/parallel_for.h>

#include "checks.hpp"
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

BRIDGE_VECTOR_CLONES
void softmax_rows(const float* __restrict in, float* __restrict out, std::size_t row_begin, std::size_t row_end,
                  std::size_t cols) {
  for (std::size_t row = row_begin; row < row_end; ++row) {
    const float* __restrict xi = in + row * cols;
    float* __restrict yi = out + row * cols;
    float max = -std::numeric_limits<float>::infinity();
#pragma omp simd reduction(max : max)
    for (std::size_t j = 0; j < cols; ++j) max = std::max(max, xi[j]);
    // Summed in float across the vector's lanes for a block, the blocks in double: long rows keep
    // a double's accuracy, and the loop vectorises on every instruction set.
    double sum = 0;
    for (std::size_t block = 0; block < cols; block += kSumBlock) {
      const std::size_t end = std::min(cols, block + kSumBlock);
      float partial = 0;
#pragma omp simd reduction(+ : partial)
      for (std::size_t j = block; j < end; ++j) {
        yi[j] = exp_nonpositive(xi[j] - max);
        partial += yi[j];
      }
      sum += partial;
    }
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
  tbb::parallel_for(tbb::blocked_range<std::size_t>(0, rows, grain),
                    [=](const tbb::blocked_range<std::size_t>& r) { softmax_rows(in, out, r.begin(), r.end(), cols); });
}

KernelSpec make_spec() {
  return {.name = kName,
          .summary = "x:f32[...,N] -> out:f32[...,N], softmax of each row",
          .plan = plan,
          .run_cpu = run_cpu,
          .batchable = true,
          .writes_every_output = true,
          .bytes_bound = true};
}
BRIDGE_REGISTER_KERNEL(make_spec);

}  // namespace
}  // namespace bridge::worker
