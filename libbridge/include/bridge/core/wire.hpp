#pragma once
/// @file The wire format as broker, worker and client use it: decoding with verification, limits,
/// building headers, and moving tensor bytes between ZeroMQ frames and Tensors without copies.
/// Internal to the fleet (not installed); clients in other languages follow docs/protocol.md.

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include <zmq.hpp>

#include "bridge/status.hpp"
#include "bridge/tensor.hpp"
#include "bridge/wire/bridge_generated.h"

namespace bridge::core {

/// Protocol version written in every Envelope; a peer with another version is refused with VERSION_MISMATCH.
inline constexpr std::uint16_t kProtocolVersion = 1;
/// The highest actor version a request may name (JobRequest.actor_version_seen): 2^52. Versions grow
/// by one per write, and Redis's Lua scripts hold them as doubles, exact to 2^53.
inline constexpr std::uint64_t kMaxActorVersion = std::uint64_t{1} << 52;

/// Size limits applied to every received message before any of it is used. The YAML key for each
/// field is its name under `limits:` in broker.yaml / worker.yaml.
struct Limits {
  std::uint64_t max_header_bytes = 64 * 1024;
  std::uint64_t max_tensors = 64;           // per request or result
  std::uint64_t max_rank = 8;
  std::uint64_t max_tensor_bytes = 256ull << 20;
  std::uint64_t max_job_bytes = 1ull << 30;  // all tensors of one job together
  std::uint64_t max_params = 64;            // per kernel (each pipeline stage has its own)
  std::uint64_t max_stages = 16;            // pipeline stages after the first kernel
  std::uint64_t max_name_bytes = 256;        // kernel, tenant, tensor and param names
};

using Frames = std::vector<zmq::message_t>;

StatusCode from_wire(wire::StatusCode code);
wire::StatusCode to_wire(StatusCode code);

/// Verifies a header frame (size limit, FlatBuffer structure, file identifier, version) and points
/// `out` into it; `out` is valid as long as `frame` is alive and unmodified. A frame whose bytes are
/// not 8-byte aligned (ZeroMQ may deliver one at any offset of its receive buffer) is first replaced
/// by an aligned copy, because FlatBuffers reads its scalars in place.
Status decode_envelope(zmq::message_t& frame, const Limits& limits, const wire::Envelope*& out);
/// The same checks on a header held elsewhere (a JobRequest inside a Dispatch): its bytes must stay
/// alive and unmodified while `out` is used; 8-byte aligned, as FlatBuffers reads scalars in place.
Status verify_envelope(std::span<const std::uint8_t> header, const Limits& limits, const wire::Envelope*& out);

/// What a header frame that decode_envelope() refused still says, when its bytes verify as an
/// envelope (another protocol version, say): its body type (NONE otherwise) and the id the refusal
/// (a JobResult) must carry for the sender to match it: a JobRequest's job_id, or the request_id of
/// a StatusRequest, QuotaRequest, ActorRequest or Ping (0 otherwise).
struct RefusedHeader {
  wire::Body body = wire::Body::NONE;
  std::uint64_t job_id = 0;
};
RefusedHeader read_refused_header(const zmq::message_t& frame);

using TensorDescs = flatbuffers::Vector<flatbuffers::Offset<wire::TensorDesc>>;

/// Where the descriptors being checked may find their bytes besides a payload frame of their own.
struct TensorSources {
  bool resident = false;    ///< an actor-resident tensor (`resident` set): an actor call's inputs
  bool inline_data = true;  ///< inside the header (`data` set); not kept tensors or activations
};

/// Checks tensor descriptors against the payload frames that carry their bytes: counts, dtypes,
/// ranks, dimensions, byte sizes (a frame's or the inline data's) and limits. Adds the bytes to
/// `total_bytes`, inline ones included.
Status validate_tensors(const TensorDescs* descs, std::span<const zmq::message_t> payload, const Limits& limits,
                        std::uint64_t& total_bytes, TensorSources sources = {});

/// Whether a descriptor names an actor-resident tensor rather than a payload frame.
bool is_resident(const wire::TensorDesc& desc);
/// Whether a descriptor carries its tensor's bytes itself (`data`) rather than a payload frame.
bool is_inline(const wire::TensorDesc& desc);
/// Whether a payload frame carries the descriptor's bytes: neither resident nor inline.
inline bool has_frame(const wire::TensorDesc& desc) { return !is_resident(desc) && !is_inline(desc); }

/// The largest tensor the fleet's own senders put inside a header (inline) by default, and the most
/// inline bytes they put in one header: well under the smallest useful max_header_bytes. A tensor
/// this small costs more as a frame of its own (ZeroMQ's and CURVE's work per frame) than as bytes.
inline constexpr std::uint32_t kDefaultInlineBytes = 4096;
inline constexpr std::uint64_t kInlineBudgetBytes = 16 * 1024;
/// The largest client request header a broker copies into its Dispatch rather than sending as a
/// frame of its own (and at most half the header limit).
inline constexpr std::uint64_t kEmbeddedRequestBytes = 8 * 1024;

/// Which of `tensors` go inline: each of at most `up_to` bytes, in order, while their sum stays
/// within `budget`. `up_to` 0: none.
std::vector<bool> choose_inline(std::span<const Tensor> tensors, std::uint64_t up_to,
                                std::uint64_t budget = kInlineBudgetBytes);

/// Checks every field of a request a broker or worker relies on, and its tensors (validate_tensors).
Status validate_request(const wire::JobRequest& request, std::span<const zmq::message_t> payload,
                        const Limits& limits, std::uint64_t& total_bytes);

/// Copies a finished builder into a header frame.
zmq::message_t to_frame(const flatbuffers::FlatBufferBuilder& fbb);

/// Finishes `fbb` with an Envelope around `body` and returns the header frame. `batches`: the
/// sender reads Batch messages (Envelope.batches).
zmq::message_t finish_envelope(flatbuffers::FlatBufferBuilder& fbb, wire::Body type, flatbuffers::Offset<void> body,
                               bool batches = false);

/// A JobResult header that carries only an error.
zmq::message_t make_error_result(std::uint64_t job_id, const Status& status, std::uint32_t retry_after_ms = 0);

/// Descriptor of a tensor for a header under construction; with `inline_data`, its bytes too (8-byte
/// aligned in the buffer, for readers that use them in place), and no frame is to follow for it.
flatbuffers::Offset<wire::TensorDesc> add_tensor_desc(flatbuffers::FlatBufferBuilder& fbb, const Tensor& tensor,
                                                      bool inline_data = false);

/// The tensor's bytes as a frame, without copying: the frame keeps the tensor's storage alive.
zmq::message_t tensor_to_frame(const Tensor& tensor);

/// A tensor over a received frame (already checked by validate_tensors). Zero-copy when the frame's
/// bytes are aligned for the dtype; otherwise the bytes are copied once into aligned storage and
/// `realigned` is set (ZeroMQ may deliver small frames at any offset inside its receive buffer).
Tensor tensor_from_frame(const wire::TensorDesc& desc, zmq::message_t&& frame, bool* realigned = nullptr);

/// The tensor of a descriptor checked by validate_tensors whose bytes are inline: a copy of them.
Tensor tensor_from_inline(const wire::TensorDesc& desc);

/// The tensor of a checked descriptor that is not resident: its inline bytes (copied), or else the
/// next of `frames` (frames[next++], taken as tensor_from_frame does).
Tensor take_tensor(const wire::TensorDesc& desc, std::span<zmq::message_t> frames, std::size_t& next);

/// Shape of a descriptor as a Shape.
Shape shape_of(const wire::TensorDesc& desc);

std::string_view view(const flatbuffers::String* s);

}  // namespace bridge::core
