#pragma once
// Test data: a float32 tensor of uniform values in [-1, 1], the same for the same seed.

#include <random>

#include "bridge/tensor.hpp"

namespace bridge::testing {

inline Tensor random_tensor(Shape shape, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  Tensor t = Tensor::zeros(DType::kF32, std::move(shape));
  for (float& v : t.mutable_values<float>()) v = dist(rng);
  return t;
}

}  // namespace bridge::testing
