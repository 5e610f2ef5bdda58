// normalize: affine map per channel, out[..., c] = x[..., c] * scale[c] + shift[c], for f32 x whose
// last axis is the channel (e.g. an image [H,W,C]; mean/std normalisation is scale = 1/std,
// shift = -mean/std). With x alone (as a pipeline stage, whose only inputs are the previous
// stage's outputs), params `scale` (default 1) and `shift` (default 0) apply to every channel.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>

#include <tbb/parallel_for.h>

#include "checks.hpp"
#include "cpu_isa.hpp"
#include "streaming.hpp"
#include "vector_clones.hpp"

#if BRIDGE_KERNELS_PICK_ISA
#include <immintrin.h>
#endif

namespace bridge::worker {
namespace {

constexpr const char* kName = "normalize";

Status plan(const KernelArgs& args, std::vector<OutputSpec>& outputs) {
  if (args.inputs.size() != 1)
    BRIDGE_RETURN_IF_ERROR(checks::input_count(kName, args, 3, "x, scale, shift (or x alone)"));
  const Tensor& x = args.inputs[0];
  BRIDGE_RETURN_IF_ERROR(checks::dtype_is(kName, x, "x", DType::kF32));
  if (x.shape().empty())
    return {StatusCode::kInvalidArgument, std::string(kName) + ": input 'x' must have rank >= 1 (channels last)"};
  if (args.inputs.size() == 1) {
    for (const char* name : {"scale", "shift"})
      if (const double* v = args.find_param(name); v != nullptr)
        BRIDGE_RETURN_IF_ERROR(checks::float_param(kName, name, *v));
    outputs.push_back({"out", DType::kF32, x.shape()});
    return {};
  }
  for (const char* name : {"scale", "shift"})
    if (args.find_param(name) != nullptr)
      return {StatusCode::kInvalidArgument,
              std::string(kName) + ": param '" + name +
                  "' is given with scale and shift tensors; give them as tensors or as params, not both"};
  BRIDGE_RETURN_IF_ERROR(checks::dtype_is(kName, args.inputs[1], "scale", DType::kF32));
  BRIDGE_RETURN_IF_ERROR(checks::dtype_is(kName, args.inputs[2], "shift", DType::kF32));
  const Shape channels{x.shape().back()};
  for (std::size_t i : {1, 2})
    if (args.inputs[i].shape() != channels)
      return {StatusCode::kInvalidArgument, std::string(kName) + ": input '" + (i == 1 ? "scale" : "shift") +
                                                "' must have shape " + checks::shape_string(channels) +
                                                " (one value per channel of x), got " +
                                                checks::shape_string(args.inputs[i].shape())};
  outputs.push_back({"out", DType::kF32, x.shape()});
  return {};
}

// out[i] = x[i] * scale[i % c] + shift[i % c] over flat elements [begin, end), both multiples of the
// period; `scale` and `shift` hold the per-channel values repeated to `period` (a multiple of c), so
// that the inner loop is unit-stride and the compiler vectorises it whatever c is.
BRIDGE_VECTOR_CLONES
void affine_periodic(const float* __restrict x, const float* __restrict scale, const float* __restrict shift,
                     float* __restrict out, std::size_t begin, std::size_t end, std::size_t period) {
  for (std::size_t base = begin; base < end; base += period) {
    const std::size_t count = std::min(period, end - base);
    for (std::size_t j = 0; j < count; ++j) out[base + j] = x[base + j] * scale[j] + shift[j];
  }
}

// out[i] = x[i] * scale + shift over [begin, end): the params form, one pair for every channel.
BRIDGE_VECTOR_CLONES
void affine_uniform(const float* __restrict x, float scale, float shift, float* __restrict out, std::size_t begin,
                    std::size_t end) {
  for (std::size_t i = begin; i < end; ++i) out[i] = x[i] * scale + shift;
}

constexpr std::size_t kGrain = 16384;  // elements per task: 64 KiB of x

#if BRIDGE_KERNELS_PICK_ISA
// affine_periodic with streaming stores (streaming.hpp) for outputs of streaming::kMinBytes and
// more: this kernel ran at 0.62-0.88 of the triad with ordinary stores, 1.19-1.78 with these
// (bridge_cpu_benchmark, alternating builds). One loop per vector width, written out: the
// intrinsics need the function's own target. Each period's first elements are written one at a
// time up to the vector's alignment, and its last ones after the last whole vector.
using streaming::unaligned_head;

inline void affine_scalar(const float* x, const float* scale, const float* shift, float* out, std::size_t from,
                          std::size_t to) {
  for (std::size_t j = from; j < to; ++j) out[j] = x[j] * scale[j] + shift[j];
}

[[gnu::target("arch=x86-64-v4")]] void affine_streaming_avx512(const float* x, const float* scale, const float* shift,
                                                               float* out, std::size_t begin, std::size_t end,
                                                               std::size_t period) {
  for (std::size_t base = begin; base < end; base += period) {
    const std::size_t count = std::min(period, end - base);
    std::size_t j = unaligned_head(out + base, count, 64);
    affine_scalar(x + base, scale, shift, out + base, 0, j);
    for (; j + 16 <= count; j += 16)
      _mm512_stream_ps(out + base + j, _mm512_fmadd_ps(_mm512_loadu_ps(x + base + j), _mm512_loadu_ps(scale + j),
                                                       _mm512_loadu_ps(shift + j)));
    affine_scalar(x + base, scale, shift, out + base, j, count);
  }
  streaming::fence();
}

[[gnu::target("arch=x86-64-v3")]] void affine_streaming_avx2(const float* x, const float* scale, const float* shift,
                                                             float* out, std::size_t begin, std::size_t end,
                                                             std::size_t period) {
  for (std::size_t base = begin; base < end; base += period) {
    const std::size_t count = std::min(period, end - base);
    std::size_t j = unaligned_head(out + base, count, 32);
    affine_scalar(x + base, scale, shift, out + base, 0, j);
    for (; j + 8 <= count; j += 8)
      _mm256_stream_ps(out + base + j, _mm256_fmadd_ps(_mm256_loadu_ps(x + base + j), _mm256_loadu_ps(scale + j),
                                                       _mm256_loadu_ps(shift + j)));
    affine_scalar(x + base, scale, shift, out + base, j, count);
  }
  streaming::fence();
}

void affine_streaming_baseline(const float* x, const float* scale, const float* shift, float* out, std::size_t begin,
                               std::size_t end, std::size_t period) {
  for (std::size_t base = begin; base < end; base += period) {
    const std::size_t count = std::min(period, end - base);
    std::size_t j = unaligned_head(out + base, count, 16);
    affine_scalar(x + base, scale, shift, out + base, 0, j);
    for (; j + 4 <= count; j += 4)
      _mm_stream_ps(out + base + j, _mm_add_ps(_mm_mul_ps(_mm_loadu_ps(x + base + j), _mm_loadu_ps(scale + j)),
                                               _mm_loadu_ps(shift + j)));
    affine_scalar(x + base, scale, shift, out + base, j, count);
  }
  streaming::fence();
}

// The streaming loop for this CPU, or none where outputs are small.
using AffineLoop = void (*)(const float*, const float*, const float*, float*, std::size_t, std::size_t, std::size_t);
AffineLoop streaming_loop(std::size_t output_bytes) {
  if (output_bytes < streaming::kMinBytes) return nullptr;
  switch (kernel_isa()) {
    case CpuIsa::kAvx512: return affine_streaming_avx512;
    case CpuIsa::kAvx2: return affine_streaming_avx2;
    case CpuIsa::kBaseline: return affine_streaming_baseline;
  }
  return nullptr;
}
#else
using AffineLoop = void (*)(const float*, const float*, const float*, float*, std::size_t, std::size_t, std::size_t);
AffineLoop streaming_loop(std::size_t) { return nullptr; }
#endif

void run_cpu(const KernelArgs& args, std::span<Tensor> outputs) {
  const auto x = args.inputs[0].values<float>();
  const auto c = static_cast<std::size_t>(args.inputs[0].shape().back());
  float* out = outputs[0].mutable_values<float>().data();
  // Nothing to write; and nothing is allocated for the channels of an empty x (its other dimensions
  // may be 0 with many channels): every buffer below is at most the size of x.
  if (x.empty()) return;
  const AffineLoop streaming = streaming_loop(x.size_bytes());
  if (args.inputs.size() == 1) {
    // Params apply to every channel alike: no per-channel arrays (which, for a long last axis,
    // were two copies of x's size built value by value on each run).
    const double* sc = args.find_param("scale");
    const double* sh = args.find_param("shift");
    const float scale = sc != nullptr ? static_cast<float>(*sc) : 1.0f;
    const float shift = sh != nullptr ? static_cast<float>(*sh) : 0.0f;
    if (streaming != nullptr) {  // one period of the two values, 4 KiB each
      const std::vector<float> scales(1024, scale), shifts(1024, shift);
      tbb::parallel_for(tbb::blocked_range<std::size_t>(0, (x.size() + 1023) / 1024, kGrain / 1024),
                        [&](const tbb::blocked_range<std::size_t>& r) {
                          streaming(x.data(), scales.data(), shifts.data(), out, r.begin() * 1024,
                                    std::min(x.size(), r.end() * 1024), 1024);
                        });
      return;
    }
    tbb::parallel_for(tbb::blocked_range<std::size_t>(0, x.size(), kGrain),
                      [&](const tbb::blocked_range<std::size_t>& r) {
                        affine_uniform(x.data(), scale, shift, out, r.begin(), r.end());
                      });
    return;
  }
  // The per-channel values, repeated to at least kMinPeriod values (whole pixels) when there are
  // few channels (an image's 3); many channels are used as they are. The repeat is a whole number
  // of 64-byte lines too (3 channels: 1056 values, not 1026), so that every period of x and out
  // starts where the first does: on a cache-line boundary when they are aligned (outputs from the
  // pool always are; inputs adopted from ZeroMQ frames may not be). With both aligned, this loop
  // went from 0.77-0.82 of the triad to 0.92-0.96 in a harness of its own.
  constexpr std::size_t kMinPeriod = 1024;
  constexpr std::size_t kLineValues = 64 / sizeof(float);
  const std::size_t pixels_per_line = kLineValues / std::gcd(c, kLineValues);  // pixels in a whole line
  // Never more pixels than x has: one period then covers x, and a small x does not pay for building
  // a repeat it cannot use (1023 channels repeated 16 times took 35-43 us for a pixel or two of x).
  const std::size_t pixels_per_period =
      std::min(c >= kMinPeriod ? 1 : (kMinPeriod / c + pixels_per_line) / pixels_per_line * pixels_per_line,
               std::max<std::size_t>(1, x.size() / c));
  const float* scale = args.inputs[1].values<float>().data();
  const float* shift = args.inputs[2].values<float>().data();
  std::vector<float> repeated_scale, repeated_shift;
  if (pixels_per_period > 1) {
    repeated_scale.reserve(c * pixels_per_period);
    repeated_shift.reserve(c * pixels_per_period);
    for (std::size_t p = 0; p < pixels_per_period; ++p) {
      repeated_scale.insert(repeated_scale.end(), scale, scale + c);
      repeated_shift.insert(repeated_shift.end(), shift, shift + c);
    }
    scale = repeated_scale.data();
    shift = repeated_shift.data();
  }
  const std::size_t period = c * pixels_per_period;
  const std::size_t periods = (x.size() + period - 1) / period;
  const std::size_t grain = std::max<std::size_t>(1, kGrain / period);
  const AffineLoop loop = streaming != nullptr ? streaming : affine_periodic;
  tbb::parallel_for(tbb::blocked_range<std::size_t>(0, periods, grain), [&](const tbb::blocked_range<std::size_t>& r) {
    loop(x.data(), scale, shift, out, r.begin() * period, std::min(x.size(), r.end() * period), period);
  });
}

KernelSpec make_spec() {
  return {.name = kName,
          .summary =
              "x:f32[...,C], scale:f32[C], shift:f32[C] (or x and params scale, shift) -> x*scale + shift per channel",
          .plan = plan,
          .run_cpu = run_cpu,
          .params = {"scale", "shift"},
          .writes_every_output = true,
          .bytes_bound = true};
}
BRIDGE_REGISTER_KERNEL(make_spec);

}  // namespace
}  // namespace bridge::worker
