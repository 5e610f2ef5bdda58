// Fuzz target: every message a broker, worker or client decodes, through the same verification and
// decoding calls they make. Any crash, sanitizer report or uncaught exception is a bug: bad input
// must come back as a Status.
#include <cstddef>
#include <cstdint>

#include "bridge/core/batch.hpp"
#include "bridge/core/frame_layouts.hpp"
#include "bridge/core/job_codec.hpp"
#include "bridge/core/protocol.hpp"
#include "bridge/core/protocol_replies.hpp"
#include "fuzz_frames.hpp"

namespace {

using namespace bridge;

// Small limits, so that inputs reach the size checks and the fuzzer does not allocate gigabytes.
core::Limits fuzz_limits() {
  core::Limits limits;
  limits.max_header_bytes = 16 * 1024;
  limits.max_tensor_bytes = 1 << 16;
  limits.max_job_bytes = 1 << 18;
  return limits;
}

// What the worker does with validated tensors: wraps each frame (zero-copy or realigned), or
// copies the inline bytes.
void materialise(const core::TensorDescs* descs, std::span<zmq::message_t> frames) {
  if (descs == nullptr) return;
  std::size_t frame = 0;
  for (flatbuffers::uoffset_t i = 0; i < descs->size(); ++i) {
    const wire::TensorDesc* desc = descs->Get(i);
    if (core::is_resident(*desc)) continue;
    Tensor t = core::take_tensor(*desc, frames, frame);
    volatile std::size_t sink = t.byte_size() + static_cast<std::size_t>(t.element_count());
    (void)sink;
  }
}

// One message (alone, or one of a Batch), its header frames[0] decoded as `message`.
void decode_message(const wire::Envelope& message, core::Frames& frames, const core::Limits& limits) {
  const wire::Envelope* envelope = &message;
  auto payload = std::span(frames).subspan(1);
  std::uint64_t bytes = 0;
  switch (envelope->body_type()) {
    case wire::Body::JobRequest: {
      const auto* request = envelope->body_as_JobRequest();
      if (core::validate_request(*request, payload, limits, bytes).is_ok()) materialise(request->inputs(), payload);
      break;
    }
    case wire::Body::JobResult: {
      const auto* header = envelope->body_as_JobResult();
      const core::ResultLayout layout = core::ResultLayout::of(*header);
      if (layout.check(payload.size()).is_ok())  // as the broker: outputs first, then kept tensors
        (void)core::validate_tensors(header->kept(), layout.kept_frames(payload), limits, bytes,
                                     {.inline_data = false});
      JobResult out;
      (void)core::decode_result(*header, payload, limits, out);
      break;
    }
    case wire::Body::Dispatch: {
      // As the worker: the request inside the Dispatch (or none), its framed inputs, the activation.
      const auto* dispatch = envelope->body_as_Dispatch();
      (void)core::view(dispatch->actor());
      auto rest = payload;
      const wire::Envelope* inner = nullptr;
      if (dispatch->request() != nullptr &&
          core::verify_envelope({dispatch->request()->data(), dispatch->request()->size()}, limits, inner).is_ok() &&
          inner->body_type() == wire::Body::JobRequest) {
        const auto* request = inner->body_as_JobRequest();
        const core::DispatchLayout layout = core::DispatchLayout::of(*request, true);
        if (!layout.check(payload.size()).is_ok()) break;
        if (core::validate_request(*request, layout.input_frames(payload), limits, bytes).is_ok())
          materialise(request->inputs(), layout.input_frames(payload));
        rest = layout.activation_frames(payload);
      }
      if (core::validate_tensors(dispatch->activation(), rest, limits, bytes, {.inline_data = false}).is_ok())
        materialise(dispatch->activation(), rest);
      break;
    }
    default: break;
  }
  // Every control message decoder, on every envelope: each refuses other bodies and reads its own.
  namespace protocol = core::protocol;
  protocol::WorkerHello hello;
  protocol::Heartbeat heartbeat;
  protocol::Goodbye goodbye;
  protocol::Reregister reregister;
  protocol::Deactivate deactivate;
  protocol::Cancel cancel;
  protocol::Ping ping;
  protocol::Pong pong;
  protocol::CancelRequest cancel_request;
  protocol::StatusRequest status_request;
  protocol::QuotaRequest quota_request;
  protocol::ActorRequest actor_request;
  protocol::StatusReply status_reply;
  protocol::QuotaReply quota_reply;
  protocol::ActorReply actor_reply;
  (void)protocol::decode(*envelope, limits, hello);
  (void)protocol::decode(*envelope, heartbeat);
  (void)protocol::decode(*envelope, goodbye);
  (void)protocol::decode(*envelope, reregister);
  (void)protocol::decode(*envelope, deactivate);
  (void)protocol::decode(*envelope, cancel);
  (void)protocol::decode(*envelope, ping);
  (void)protocol::decode(*envelope, pong);
  (void)protocol::decode(*envelope, cancel_request);
  (void)protocol::decode(*envelope, status_request);
  (void)protocol::decode(*envelope, quota_request);
  (void)protocol::decode(*envelope, actor_request);
  (void)protocol::decode(*envelope, status_reply);
  (void)protocol::decode(*envelope, quota_reply);
  (void)protocol::decode(*envelope, actor_reply);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const core::Limits limits = fuzz_limits();
  core::Frames frames = fuzz::split_frames(data, size);
  if (frames.empty()) return 0;
  const wire::Envelope* envelope = nullptr;
  if (!core::decode_envelope(frames[0], limits, envelope).is_ok()) return 0;
  // As every receiver: a Batch's messages one by one.
  core::each_message(frames, 0, *envelope, limits,
                     [](const wire::Envelope& message, core::Frames& one) { decode_message(message, one, limits); });
  return 0;
}
