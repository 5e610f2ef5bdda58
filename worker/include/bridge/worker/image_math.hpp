#pragma once
// The arithmetic the image kernels share between their CPU and CUDA versions (header-only, so that
// the CUDA plugin, which does not link the kernel catalog, computes exactly the same taps and weights).

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

namespace bridge::worker::image {

/// Bilinear sampling along one axis: output index i reads source indices lo and hi, hi weighted by
/// `weight`. Half-pixel centres (OpenCV INTER_LINEAR, PyTorch align_corners=False), edges clamped.
struct BilinearTap {
  std::int64_t lo = 0, hi = 0;
  float weight = 0;
};

inline BilinearTap bilinear_tap(std::int64_t i, std::int64_t in_size, std::int64_t out_size) {
  const double scale = static_cast<double>(in_size) / static_cast<double>(out_size);
  const double source = std::clamp((static_cast<double>(i) + 0.5) * scale - 0.5, 0.0, static_cast<double>(in_size - 1));
  const auto lo = static_cast<std::int64_t>(std::floor(source));
  return {lo, std::min(lo + 1, in_size - 1), static_cast<float>(source - static_cast<double>(lo))};
}

/// Every tap of an axis resampled from in_size to out_size.
inline std::vector<BilinearTap> bilinear_taps(std::int64_t in_size, std::int64_t out_size) {
  std::vector<BilinearTap> taps(static_cast<std::size_t>(out_size));
  for (std::int64_t i = 0; i < out_size; ++i) taps[static_cast<std::size_t>(i)] = bilinear_tap(i, in_size, out_size);
  return taps;
}

/// Normalised 1-D Gaussian of radius ceil(3 sigma): 2 * radius + 1 weights summing to 1.
inline std::vector<float> gaussian_weights(double sigma) {
  const auto radius = static_cast<std::int64_t>(std::ceil(3 * sigma));
  std::vector<double> w(static_cast<std::size_t>(2 * radius + 1));
  double sum = 0;
  for (std::int64_t i = -radius; i <= radius; ++i)
    sum += w[static_cast<std::size_t>(i + radius)] = std::exp(-0.5 * static_cast<double>(i * i) / (sigma * sigma));
  std::vector<float> out(w.size());
  for (std::size_t i = 0; i < w.size(); ++i) out[i] = static_cast<float>(w[i] / sum);
  return out;
}

}  // namespace bridge::worker::image
