#include "bridge/core/frame_layouts.hpp"

#include <string>

namespace bridge::core {

ResultLayout ResultLayout::of(const wire::JobResult& header) {
  return {.returned = header.outputs() == nullptr ? 0 : header.outputs()->size(),
          .kept = header.kept() == nullptr ? 0 : header.kept()->size()};
}

Status ResultLayout::check(std::size_t payload_frames) const {
  if (payload_frames < returned)
    return {StatusCode::kMalformedMessage, "result has fewer frames than outputs (" + std::to_string(payload_frames) +
                                               " frames for " + std::to_string(returned) + " outputs)"};
  if (payload_frames != returned + kept)
    return {StatusCode::kMalformedMessage, "result has " + std::to_string(payload_frames) + " frames for " +
                                               std::to_string(returned) + " outputs and " + std::to_string(kept) +
                                               " kept tensors"};
  return {};
}

DispatchLayout DispatchLayout::of(const wire::JobRequest& request) {
  DispatchLayout layout;
  if (request.inputs() != nullptr)
    for (const auto* desc : *request.inputs()) layout.framed_inputs += is_resident(*desc) ? 0 : 1;
  return layout;
}

Status DispatchLayout::check(std::size_t payload_frames) const {
  if (payload_frames < 1 + framed_inputs)
    return {StatusCode::kMalformedMessage, "dispatch has fewer frames than its tensors"};
  return {};
}

}  // namespace bridge::core
