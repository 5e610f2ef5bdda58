#pragma once
/// @file Where each part of a multipart message sits (docs/protocol.md, "Frames"), worked out here
/// once for every sender and reader:
///   a result:   [JobResult header][returned outputs not inline...][kept tensors (actor calls)...]
///   a dispatch: [Dispatch header][JobRequest header, unless the Dispatch holds it]
///               [the request's tensors with a frame...][the activation's tensors, when activating...]
/// A tensor with a frame is one neither inline (its bytes in the header) nor actor-resident.
/// The spans are views into the caller's frames; a layout checks the count before any is taken.

#include <cstddef>
#include <span>

#include <zmq.hpp>

#include "bridge/core/wire.hpp"

namespace bridge::core {

/// The frames after a JobResult header.
struct ResultLayout {
  std::size_t returned = 0;  ///< the header's outputs that are not inline: the client's frames
  std::size_t kept = 0;      ///< the header's kept tensors: an actor call's new state, for the store

  static ResultLayout of(const wire::JobResult& header);
  /// MALFORMED_MESSAGE unless `payload` (the frames after the header) holds precisely the returned
  /// outputs and the kept tensors.
  Status check(std::size_t payload_frames) const;
  std::span<zmq::message_t> returned_frames(std::span<zmq::message_t> payload) const {
    return payload.subspan(0, returned);
  }
  std::span<zmq::message_t> kept_frames(std::span<zmq::message_t> payload) const {
    return payload.subspan(returned);
  }
};

/// The frames after a Dispatch header.
struct DispatchLayout {
  std::size_t request_frames = 1;  ///< 1: the request's header follows; 0: the Dispatch holds it
  std::size_t framed_inputs = 0;   ///< the request's inputs with a frame (neither inline nor resident)

  /// `request_in_dispatch`: whether the Dispatch holds the request's header (Dispatch.request).
  static DispatchLayout of(const wire::JobRequest& request, bool request_in_dispatch);
  /// MALFORMED_MESSAGE unless `payload` (the frames after the Dispatch header) holds the request
  /// header (unless the Dispatch holds it) and its framed inputs.
  Status check(std::size_t payload_frames) const;
  std::span<zmq::message_t> input_frames(std::span<zmq::message_t> payload) const {
    return payload.subspan(request_frames, framed_inputs);
  }
  std::span<zmq::message_t> activation_frames(std::span<zmq::message_t> payload) const {
    return payload.subspan(request_frames + framed_inputs);
  }
};

}  // namespace bridge::core
