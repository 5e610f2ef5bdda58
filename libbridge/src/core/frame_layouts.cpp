#include "bridge/core/frame_layouts.hpp"

#include <string>

namespace bridge::core {

namespace {

std::size_t framed(const TensorDescs* descs) {
  std::size_t count = 0;
  if (descs != nullptr)
    for (const auto* desc : *descs) count += has_frame(*desc) ? 1 : 0;
  return count;
}

}  // namespace

ResultLayout ResultLayout::of(const wire::JobResult& header) {
  // Kept tensors are never inline (validate_tensors refuses it): each is counted as a frame here.
  return {.returned = framed(header.outputs()), .kept = header.kept() == nullptr ? 0 : header.kept()->size()};
}

Status ResultLayout::check(std::size_t payload_frames) const {
  if (payload_frames < returned)
    return {StatusCode::kMalformedMessage, "result has fewer frames than outputs (" + std::to_string(payload_frames) +
                                               " frames for " + std::to_string(returned) + " outputs not inline)"};
  if (payload_frames != returned + kept)
    return {StatusCode::kMalformedMessage, "result has " + std::to_string(payload_frames) + " frames for " +
                                               std::to_string(returned) + " outputs not inline and " +
                                               std::to_string(kept) +
                                               " kept tensors (each with a frame of its "
                                               "own: a kept tensor is never inline)"};
  return {};
}

DispatchLayout DispatchLayout::of(const wire::JobRequest& request, bool request_in_dispatch) {
  return {.request_frames = request_in_dispatch ? 0u : 1u, .framed_inputs = framed(request.inputs())};
}

Status DispatchLayout::check(std::size_t payload_frames) const {
  if (payload_frames < request_frames + framed_inputs)
    return {StatusCode::kMalformedMessage, "dispatch has fewer frames than its tensors"};
  return {};
}

}  // namespace bridge::core
