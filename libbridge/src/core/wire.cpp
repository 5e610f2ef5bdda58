#include "bridge/core/wire.hpp"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>

namespace bridge::core {
namespace {

#define BRIDGE_SAME_CODE(ours, theirs) \
  static_assert(static_cast<unsigned>(StatusCode::ours) == static_cast<unsigned>(wire::StatusCode::theirs))
BRIDGE_SAME_CODE(kOk, OK);
BRIDGE_SAME_CODE(kInvalidArgument, INVALID_ARGUMENT);
BRIDGE_SAME_CODE(kMalformedMessage, MALFORMED_MESSAGE);
BRIDGE_SAME_CODE(kVersionMismatch, VERSION_MISMATCH);
BRIDGE_SAME_CODE(kUnknownKernel, UNKNOWN_KERNEL);
BRIDGE_SAME_CODE(kUnknownTenant, UNKNOWN_TENANT);
BRIDGE_SAME_CODE(kTooLarge, TOO_LARGE);
BRIDGE_SAME_CODE(kResourceExhausted, RESOURCE_EXHAUSTED);
BRIDGE_SAME_CODE(kQueueFull, QUEUE_FULL);
BRIDGE_SAME_CODE(kDeadlineExceeded, DEADLINE_EXCEEDED);
BRIDGE_SAME_CODE(kUnavailable, UNAVAILABLE);
BRIDGE_SAME_CODE(kWorkerLost, WORKER_LOST);
BRIDGE_SAME_CODE(kInternal, INTERNAL);
BRIDGE_SAME_CODE(kNoCapableWorker, NO_CAPABLE_WORKER);
BRIDGE_SAME_CODE(kCancelled, CANCELLED);
BRIDGE_SAME_CODE(kPermissionDenied, PERMISSION_DENIED);
BRIDGE_SAME_CODE(kActorNotActive, ACTOR_NOT_ACTIVE);
BRIDGE_SAME_CODE(kAborted, ABORTED);
BRIDGE_SAME_CODE(kUnauthenticated, UNAUTHENTICATED);
BRIDGE_SAME_CODE(kDataLoss, DATA_LOSS);
static_assert(wire::StatusCode::MAX == wire::StatusCode::DATA_LOSS, "add new status codes to bridge::StatusCode");
#undef BRIDGE_SAME_CODE

static_assert(static_cast<int>(DType::kF32) == static_cast<int>(wire::DType::F32));
static_assert(static_cast<int>(DType::kU8) == static_cast<int>(wire::DType::U8));
static_assert(wire::DType::MAX == wire::DType::U8, "add new dtypes to bridge::DType");

Status malformed(std::string message) { return {StatusCode::kMalformedMessage, std::move(message)}; }

Status check_name(const flatbuffers::String* s, const char* what, const Limits& limits, bool required) {
  if (s == nullptr || s->size() == 0) {
    if (required) return {StatusCode::kInvalidArgument, std::string(what) + " is empty; set it"};
    return {};
  }
  if (s->size() > limits.max_name_bytes)
    return {StatusCode::kTooLarge, std::string(what) + " is " + std::to_string(s->size()) + " bytes; the limit is " +
                                       std::to_string(limits.max_name_bytes)};
  return {};
}

// The largest scalar in the schema is 8 bytes.
constexpr std::size_t kHeaderAlignment = 8;

void realign_header(zmq::message_t& frame) {
  if (reinterpret_cast<std::uintptr_t>(frame.data()) % kHeaderAlignment == 0) return;
  const std::size_t size = frame.size();
  void* copy =
      std::aligned_alloc(kHeaderAlignment, (size + kHeaderAlignment - 1) / kHeaderAlignment * kHeaderAlignment);
  if (copy == nullptr) throw std::bad_alloc();
  std::memcpy(copy, frame.data(), size);
  frame = zmq::message_t(
      copy, size, [](void* data, void*) { std::free(data); }, nullptr);
}

}  // namespace

StatusCode from_wire(wire::StatusCode code) { return static_cast<StatusCode>(code); }
wire::StatusCode to_wire(StatusCode code) { return static_cast<wire::StatusCode>(code); }

std::string_view view(const flatbuffers::String* s) {
  return s == nullptr ? std::string_view{} : std::string_view(s->data(), s->size());
}

Status decode_envelope(zmq::message_t& frame, const Limits& limits, const wire::Envelope*& out) {
  out = nullptr;
  if (frame.size() <= limits.max_header_bytes) realign_header(frame);
  return verify_envelope({static_cast<const std::uint8_t*>(frame.data()), frame.size()}, limits, out);
}

Status verify_envelope(std::span<const std::uint8_t> header, const Limits& limits, const wire::Envelope*& out) {
  out = nullptr;
  const std::uint8_t* data = header.data();
  const std::size_t size = header.size();
  if (size > limits.max_header_bytes)
    return {StatusCode::kTooLarge, "header frame is " + std::to_string(size) + " bytes; the limit is " +
                                       std::to_string(limits.max_header_bytes) +
                                       " (max_header_bytes), and nothing in it was read: send large tensors in "
                                       "frames of their own, and fewer messages per Batch"};
  if (size < 8 || !flatbuffers::BufferHasIdentifier(data, wire::EnvelopeIdentifier()))
    return malformed(
        "first frame is not a GpuBridge header (expected a FlatBuffer with file identifier "
        "'GBRG'; see docs/protocol.md)");
  // Verify first, then read the version: a newer peer's header still verifies here (fields are only
  // appended), so it gets VERSION_MISMATCH; bytes that do not verify at all get MALFORMED_MESSAGE.
  const auto* envelope = flatbuffers::GetRoot<wire::Envelope>(data);
  flatbuffers::Verifier verifier(data, size, /*max_depth=*/16, /*max_tables=*/100000);
  if (!wire::VerifyEnvelopeBuffer(verifier))
    return malformed("header frame failed FlatBuffer verification (truncated or corrupt)");
  if (envelope->version() != kProtocolVersion)
    return {StatusCode::kVersionMismatch, "peer speaks protocol version " + std::to_string(envelope->version()) +
                                              ", this side speaks " + std::to_string(kProtocolVersion) +
                                              "; upgrade the older side"};
  if (envelope->body_type() == wire::Body::NONE || envelope->body() == nullptr) return malformed("header has no body");
  if (static_cast<unsigned>(envelope->body_type()) > static_cast<unsigned>(wire::Body::MAX))
    return malformed("header body type " + std::to_string(static_cast<unsigned>(envelope->body_type())) +
                     " is not known to this protocol version");
  out = envelope;
  return {};
}

RefusedHeader read_refused_header(const zmq::message_t& frame) {
  const auto* data = static_cast<const std::uint8_t*>(frame.data());
  const std::size_t size = frame.size();
  // decode_envelope() realigned the frame if it could be read at all; a misaligned one is not read.
  if (size < 8 || reinterpret_cast<std::uintptr_t>(data) % 8 != 0 ||
      !flatbuffers::BufferHasIdentifier(data, wire::EnvelopeIdentifier()))
    return {};
  flatbuffers::Verifier verifier(data, size, /*max_depth=*/16, /*max_tables=*/100000);
  if (!wire::VerifyEnvelopeBuffer(verifier)) return {};
  const auto* envelope = flatbuffers::GetRoot<wire::Envelope>(data);
  std::uint64_t id = 0;
  if (const auto* job = envelope->body_as_JobRequest()) id = job->job_id();
  if (const auto* status = envelope->body_as_StatusRequest()) id = status->request_id();
  if (const auto* quota = envelope->body_as_QuotaRequest()) id = quota->request_id();
  if (const auto* actor = envelope->body_as_ActorRequest()) id = actor->request_id();
  if (const auto* ping = envelope->body_as_Ping()) id = ping->request_id();
  return {envelope->body_type(), id};
}

bool is_resident(const wire::TensorDesc& desc) { return desc.resident() != nullptr && desc.resident()->size() > 0; }

bool is_inline(const wire::TensorDesc& desc) { return desc.data() != nullptr; }

std::vector<bool> choose_inline(std::span<const Tensor> tensors, std::uint64_t up_to, std::uint64_t budget) {
  std::vector<bool> out(tensors.size(), false);
  std::uint64_t total = 0;
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    const std::uint64_t bytes = tensors[i].byte_size();
    if (up_to == 0 || bytes > up_to || total + bytes > budget) continue;
    out[i] = true;
    total += bytes;
  }
  return out;
}

Status validate_tensors(const TensorDescs* descs, std::span<const zmq::message_t> payload, const Limits& limits,
                        std::uint64_t& total_bytes, TensorSources sources) {
  const std::size_t count = descs == nullptr ? 0 : descs->size();
  if (count > limits.max_tensors)
    return {StatusCode::kTooLarge,
            std::to_string(count) + " tensors; the limit is " + std::to_string(limits.max_tensors)};
  auto label_of = [](std::size_t i, const wire::TensorDesc& desc) {
    return "tensor " + std::to_string(i) +
           (desc.name() ? " ('" + std::string(view(desc.name())) + "')" : std::string());
  };
  std::size_t framed = 0;  // descriptors that carry a payload frame
  for (std::size_t i = 0; i < count; ++i) {
    const wire::TensorDesc* desc = descs->Get(static_cast<flatbuffers::uoffset_t>(i));
    if (is_resident(*desc) && !sources.resident)
      return {StatusCode::kInvalidArgument, label_of(i, *desc) + " names resident tensor '" +
                                                std::string(view(desc->resident())) +
                                                "', which only an actor call may do"};
    if (is_inline(*desc) && !sources.inline_data)
      return malformed(label_of(i, *desc) + " has inline data where only a payload frame may carry it");
    if (is_inline(*desc) && is_resident(*desc))
      return {StatusCode::kInvalidArgument,
              label_of(i, *desc) +
                  " has both inline data and a resident name; give one: the bytes, or the name of a tensor the "
                  "actor holds"};
    if (has_frame(*desc)) ++framed;
  }
  if (framed != payload.size())
    return malformed("header describes " + std::to_string(framed) + " tensors with data but " +
                     std::to_string(payload.size()) + " payload frames follow; send one frame per tensor");
  std::size_t frame = 0;
  for (std::size_t i = 0; i < count; ++i) {
    const wire::TensorDesc* desc = descs->Get(static_cast<flatbuffers::uoffset_t>(i));
    // The label is made only for a refusal: this loop runs for every job, several times.
    BRIDGE_RETURN_IF_ERROR(check_name(desc->name(), "tensor name", limits, false));
    if (is_resident(*desc)) {
      BRIDGE_RETURN_IF_ERROR(check_name(desc->resident(), "resident tensor name", limits, true));
      continue;
    }
    if (static_cast<unsigned>(desc->dtype()) > static_cast<unsigned>(wire::DType::MAX))
      return {StatusCode::kInvalidArgument,
              label_of(i, *desc) + " has unknown dtype " + std::to_string(static_cast<unsigned>(desc->dtype()))};
    const std::size_t rank = desc->shape() == nullptr ? 0 : desc->shape()->size();
    if (rank > limits.max_rank)
      return {StatusCode::kTooLarge, label_of(i, *desc) + " has rank " + std::to_string(rank) + "; the limit is " +
                                         std::to_string(limits.max_rank)};
    // Overflow-safe: every dimension is bounded by the byte limit before it is multiplied. The
    // limit applies to the extent, the bytes with each dimension of 0 counted as 1: a zero
    // dimension must not let the others grow without bound, since a kernel may work or allocate in
    // proportion to them (a channel count, a row length) even when the tensor holds no bytes.
    const std::uint64_t element_bytes = dtype_size(static_cast<DType>(desc->dtype()));
    std::uint64_t bytes = element_bytes, extent = element_bytes;
    for (std::size_t d = 0; d < rank; ++d) {
      const std::int64_t dim = desc->shape()->Get(static_cast<flatbuffers::uoffset_t>(d));
      if (dim < 0)
        return {StatusCode::kInvalidArgument, label_of(i, *desc) + " has negative dimension " + std::to_string(dim)};
      const auto counted = static_cast<std::uint64_t>(std::max<std::int64_t>(dim, 1));
      if (extent > limits.max_tensor_bytes / counted) {
        return {StatusCode::kTooLarge, label_of(i, *desc) + " declares more than " +
                                           std::to_string(limits.max_tensor_bytes) +
                                           " bytes (max_tensor_bytes; a dimension of 0 counts as 1)"};
      }
      extent *= counted;
      bytes *= static_cast<std::uint64_t>(dim);
    }
    if (bytes > limits.max_tensor_bytes)
      return {StatusCode::kTooLarge, label_of(i, *desc) + " is " + std::to_string(bytes) + " bytes; the limit is " +
                                         std::to_string(limits.max_tensor_bytes)};
    if (is_inline(*desc)) {
      if (desc->data()->size() != bytes)
        return {StatusCode::kInvalidArgument, label_of(i, *desc) + ": shape and dtype give " + std::to_string(bytes) +
                                                  " bytes but its inline data has " +
                                                  std::to_string(desc->data()->size())};
    } else if (payload[frame].size() != bytes) {
      return {StatusCode::kInvalidArgument, label_of(i, *desc) + ": shape and dtype give " + std::to_string(bytes) +
                                                " bytes but its frame has " + std::to_string(payload[frame].size())};
    } else {
      ++frame;
    }
    total_bytes += bytes;
    if (total_bytes > limits.max_job_bytes)
      return {StatusCode::kTooLarge,
              "tensors total more than " + std::to_string(limits.max_job_bytes) + " bytes (max_job_bytes)"};
  }
  return {};
}

namespace {

Status check_params(const flatbuffers::Vector<flatbuffers::Offset<wire::Param>>* list, const Limits& limits) {
  const std::size_t params = list == nullptr ? 0 : list->size();
  if (params > limits.max_params)
    return {StatusCode::kTooLarge,
            std::to_string(params) + " params; the limit is " + std::to_string(limits.max_params)};
  for (std::size_t i = 0; i < params; ++i)
    BRIDGE_RETURN_IF_ERROR(
        check_name(list->Get(static_cast<flatbuffers::uoffset_t>(i))->name(), "param name", limits, true));
  return {};
}

}  // namespace

Status validate_request(const wire::JobRequest& request, std::span<const zmq::message_t> payload, const Limits& limits,
                        std::uint64_t& total_bytes) {
  if (request.job_id() == 0) return {StatusCode::kInvalidArgument, "job_id is 0; use a non-zero id unique per client"};
  BRIDGE_RETURN_IF_ERROR(check_name(request.kernel(), "kernel", limits, true));
  BRIDGE_RETURN_IF_ERROR(check_name(request.tenant(), "tenant", limits, false));  // empty: the key's tenant
  BRIDGE_RETURN_IF_ERROR(check_name(request.actor_id(), "actor_id", limits, false));
  if (static_cast<unsigned>(request.placement()) > static_cast<unsigned>(wire::Placement::MAX))
    return {StatusCode::kInvalidArgument,
            "unknown placement " + std::to_string(static_cast<unsigned>(request.placement()))};
  BRIDGE_RETURN_IF_ERROR(check_params(request.params(), limits));
  const std::size_t stages = request.stages() == nullptr ? 0 : request.stages()->size();
  if (stages > limits.max_stages)
    return {StatusCode::kTooLarge, "pipeline of " + std::to_string(stages + 1) + " kernels; the limit is " +
                                       std::to_string(limits.max_stages + 1) + " (max_stages + 1)"};
  for (std::size_t i = 0; i < stages; ++i) {
    const wire::Stage* stage = request.stages()->Get(static_cast<flatbuffers::uoffset_t>(i));
    BRIDGE_RETURN_IF_ERROR(check_name(stage->kernel(), "stage kernel", limits, true));
    BRIDGE_RETURN_IF_ERROR(check_params(stage->params(), limits));
  }
  const bool actor = request.actor_id() != nullptr && request.actor_id()->size() > 0;
  const std::size_t keep = request.keep_outputs() == nullptr ? 0 : request.keep_outputs()->size();
  if (keep > 0 && !actor)
    return {StatusCode::kInvalidArgument, "keep_outputs needs an actor_id: only actors keep tensors"};
  if (request.actor_version_seen() > 0 && !actor)
    return {StatusCode::kInvalidArgument, "actor_version_seen needs an actor_id: only actors have versions"};
  // Versions grow by one per write: no actor reaches this. Larger values would also lose precision
  // in Redis's scripts (Lua numbers are doubles, exact up to 2^53).
  if (request.actor_version_seen() > kMaxActorVersion)
    return {StatusCode::kInvalidArgument, "actor_version_seen " + std::to_string(request.actor_version_seen()) +
                                              " is beyond any version an actor can reach (at most " +
                                              std::to_string(kMaxActorVersion) +
                                              "); send the highest actor_version the fleet answered"};
  if (keep > limits.max_tensors)
    return {StatusCode::kTooLarge,
            std::to_string(keep) + " keep_outputs; the limit is " + std::to_string(limits.max_tensors)};
  for (flatbuffers::uoffset_t i = 0; i < keep; ++i) {
    const auto* name = request.keep_outputs()->Get(i);
    BRIDGE_RETURN_IF_ERROR(check_name(name, "keep_outputs name", limits, false));
    // Two outputs kept under one name: only one could be, and the other would be lost.
    for (flatbuffers::uoffset_t j = 0; j < i && view(name).size() > 0; ++j)
      if (view(request.keep_outputs()->Get(j)) == view(name))
        return {StatusCode::kInvalidArgument, "keep_outputs names '" + std::string(view(name)) + "' twice (outputs " +
                                                  std::to_string(j) + " and " + std::to_string(i) + ")"};
  }
  return validate_tensors(request.inputs(), payload, limits, total_bytes, {.resident = actor});
}

zmq::message_t to_frame(const flatbuffers::FlatBufferBuilder& fbb) {
  return zmq::message_t(fbb.GetBufferPointer(), fbb.GetSize());
}

zmq::message_t finish_envelope(flatbuffers::FlatBufferBuilder& fbb, wire::Body type, flatbuffers::Offset<void> body,
                               bool batches) {
  auto envelope = wire::CreateEnvelope(fbb, kProtocolVersion, type, body, batches);
  wire::FinishEnvelopeBuffer(fbb, envelope);
  return to_frame(fbb);
}

zmq::message_t make_error_result(std::uint64_t job_id, const Status& status, std::uint32_t retry_after_ms) {
  flatbuffers::FlatBufferBuilder fbb(256);
  fbb.ForceDefaults(true);  // the broker rewrites job_id and timings in place (docs/protocol.md)
  auto message = fbb.CreateString(status.message());
  wire::JobResultBuilder result(fbb);
  result.add_job_id(job_id);
  result.add_status(to_wire(status.code()));
  result.add_message(message);
  wire::Timings timings(0, 0, 0);
  result.add_timings(&timings);
  result.add_retry_after_ms(retry_after_ms);
  return finish_envelope(fbb, wire::Body::JobResult, result.Finish().Union());
}

flatbuffers::Offset<wire::TensorDesc> add_tensor_desc(flatbuffers::FlatBufferBuilder& fbb, const Tensor& tensor,
                                                      bool inline_data) {
  flatbuffers::Offset<flatbuffers::Vector<std::uint8_t>> data;
  if (inline_data) {
    // Aligned for any dtype (8 bytes at most): a reader may use the bytes where they are.
    fbb.ForceVectorAlignment(tensor.byte_size(), 1, 8);
    data = fbb.CreateVector(reinterpret_cast<const std::uint8_t*>(tensor.bytes().data()), tensor.byte_size());
  }
  auto name = tensor.name().empty() ? 0 : fbb.CreateString(tensor.name());
  auto shape = fbb.CreateVector(tensor.shape());
  return wire::CreateTensorDesc(fbb, name, static_cast<wire::DType>(tensor.dtype()), shape, 0, data);
}

zmq::message_t tensor_to_frame(const Tensor& tensor) {
  if (tensor.byte_size() == 0) return zmq::message_t();
  // Ownership of this Tensor copy passes to ZeroMQ, which calls the free function (possibly on its
  // I/O thread) once the bytes are on the wire.
  auto keep_alive = std::make_unique<Tensor>(tensor);
  auto* data = const_cast<std::byte*>(keep_alive->bytes().data());
  zmq::message_t frame(
      data, keep_alive->byte_size(), [](void*, void* hint) { delete static_cast<Tensor*>(hint); }, keep_alive.get());
  keep_alive.release();
  return frame;
}

namespace {

// A tensor of `desc` holding a copy of `size` bytes at `data` (as validate_tensors checked them).
Tensor copied_tensor(const wire::TensorDesc& desc, const void* data, std::size_t size) {
  Tensor copy = Tensor::uninitialized(static_cast<DType>(desc.dtype()), shape_of(desc), std::string(view(desc.name())));
  if (size > 0) std::memcpy(copy.mutable_bytes().data(), data, size);
  return copy;
}

}  // namespace

Tensor tensor_from_inline(const wire::TensorDesc& desc) {
  return copied_tensor(desc, desc.data()->data(), desc.data()->size());
}

Tensor take_tensor(const wire::TensorDesc& desc, std::span<zmq::message_t> frames, std::size_t& next) {
  if (is_inline(desc)) return tensor_from_inline(desc);
  return tensor_from_frame(desc, std::move(frames[next++]));
}

Shape shape_of(const wire::TensorDesc& desc) {
  if (desc.shape() == nullptr) return {};
  return Shape(desc.shape()->begin(), desc.shape()->end());
}

Tensor tensor_from_frame(const wire::TensorDesc& desc, zmq::message_t&& frame, bool* realigned) {
  const auto dtype = static_cast<DType>(desc.dtype());
  const std::size_t size = frame.size();
  const auto address = reinterpret_cast<std::uintptr_t>(frame.data());
  if (realigned != nullptr) *realigned = false;
  if (size == 0 || address % dtype_size(dtype) == 0) {
    auto owner = std::make_shared<zmq::message_t>(std::move(frame));
    const auto* data = static_cast<const std::byte*>(owner->data());
    return Tensor::adopt(dtype, shape_of(desc), std::string(view(desc.name())), std::move(owner), data, size);
  }
  if (realigned != nullptr) *realigned = true;
  return copied_tensor(desc, frame.data(), size);
}

}  // namespace bridge::core
