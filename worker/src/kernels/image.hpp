#pragma once
// Shared by the image kernels: an image is f32 [H, W] or [H, W, C] (row-major, channels last).

#include <cstdint>

#include "checks.hpp"

namespace bridge::worker::image {

struct Geometry {
  std::int64_t height = 0, width = 0, channels = 1;
};

/// Checks that input `index` is an f32 image and reads its geometry.
Status geometry(const char* kernel, const KernelArgs& args, std::size_t index, Geometry& out);
/// A required whole-number param in [min, max].
Status whole_param(const char* kernel, const KernelArgs& args, const char* name, double min, double max,
                   std::int64_t& out);
/// The image shape for a geometry, rank 2 if the input had rank 2.
Shape shape_of(const Geometry& g, std::size_t rank);

}  // namespace bridge::worker::image
