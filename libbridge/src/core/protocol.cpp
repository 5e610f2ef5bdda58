#include "bridge/core/protocol.hpp"

#include <algorithm>

#include "bridge/core/job_codec.hpp"
#include "protocol_body.hpp"

namespace bridge::core::protocol {
using detail::body_of;
using detail::text;

// ---- Encoders ------------------------------------------------------------------------------------

zmq::message_t encode(const WorkerHello& m) {
  flatbuffers::FlatBufferBuilder fbb(1024);
  auto body = wire::CreateWorkerHello(fbb, fbb.CreateString(m.worker_id), m.incarnation, add_device_info(fbb, m.device),
                                      detail::strings(fbb, m.kernels), m.slots, m.heartbeat_ms, m.prefetch,
                                      m.connection, m.running.empty() ? 0 : fbb.CreateVector(m.running));
  return finish_envelope(fbb, wire::Body::WorkerHello, body.Union());
}

zmq::message_t encode(const Heartbeat& m) {
  flatbuffers::FlatBufferBuilder fbb(128);
  auto metrics = m.metrics ? add_device_metrics(fbb, *m.metrics) : flatbuffers::Offset<wire::DeviceMetrics>();
  auto body = wire::CreateHeartbeat(fbb, m.inflight, metrics, m.incoming_bytes);
  return finish_envelope(fbb, wire::Body::Heartbeat, body.Union());
}

zmq::message_t encode(const Goodbye& m) {
  flatbuffers::FlatBufferBuilder fbb(128);
  auto body = wire::CreateGoodbye(fbb, fbb.CreateString(m.reason));
  return finish_envelope(fbb, wire::Body::Goodbye, body.Union());
}

zmq::message_t encode(const Reregister& m) {
  flatbuffers::FlatBufferBuilder fbb(128);
  auto body = wire::CreateReregister(fbb, fbb.CreateString(m.reason));
  return finish_envelope(fbb, wire::Body::Reregister, body.Union());
}

zmq::message_t encode(const Deactivate& m) {
  flatbuffers::FlatBufferBuilder fbb(128);
  auto body = wire::CreateDeactivate(fbb, fbb.CreateString(m.actor));
  return finish_envelope(fbb, wire::Body::Deactivate, body.Union());
}

zmq::message_t encode(const Cancel& m) {
  flatbuffers::FlatBufferBuilder fbb(64);
  auto body = wire::CreateCancel(fbb, m.dispatch_id, to_wire(m.reason));
  return finish_envelope(fbb, wire::Body::Cancel, body.Union());
}

zmq::message_t encode(const Ping& m) {
  flatbuffers::FlatBufferBuilder fbb(64);
  auto body = wire::CreatePing(fbb, m.request_id);
  return finish_envelope(fbb, wire::Body::Ping, body.Union());
}

zmq::message_t encode(const Pong& m) {
  flatbuffers::FlatBufferBuilder fbb(128);
  auto body = wire::CreatePong(fbb, m.request_id, fbb.CreateString(m.broker_id), m.incarnation);
  // The broker reads Batches: the client may send its job requests in them.
  return finish_envelope(fbb, wire::Body::Pong, body.Union(), /*batches=*/true);
}

zmq::message_t encode(const CancelRequest& m) {
  flatbuffers::FlatBufferBuilder fbb(64);
  auto body = wire::CreateCancelRequest(fbb, m.job_id);
  return finish_envelope(fbb, wire::Body::CancelRequest, body.Union());
}

zmq::message_t encode(const StatusRequest& m) {
  flatbuffers::FlatBufferBuilder fbb(64);
  auto body = wire::CreateStatusRequest(fbb, m.request_id);
  return finish_envelope(fbb, wire::Body::StatusRequest, body.Union());
}

zmq::message_t encode(const QuotaRequest& m) {
  flatbuffers::FlatBufferBuilder fbb(128);
  auto body = wire::CreateQuotaRequest(fbb, m.request_id, fbb.CreateString(m.tenant));
  return finish_envelope(fbb, wire::Body::QuotaRequest, body.Union());
}

zmq::message_t encode(const ActorRequest& m) {
  flatbuffers::FlatBufferBuilder fbb(128);
  auto body =
      wire::CreateActorRequest(fbb, m.request_id, fbb.CreateString(m.tenant), fbb.CreateString(m.actor_id), m.reset);
  return finish_envelope(fbb, wire::Body::ActorRequest, body.Union());
}

// ---- Decoders ------------------------------------------------------------------------------------

Status decode(const wire::Envelope& envelope, const Limits& limits, WorkerHello& out) {
  Status status;
  const auto* hello = body_of<wire::WorkerHello>(envelope, wire::Body::WorkerHello, status);
  if (hello == nullptr) return status;
  // The broker knows a worker by this id (its routing id changes with each connection).
  const std::size_t id_bytes = hello->worker_id()->size();
  if (id_bytes == 0 || id_bytes > limits.max_name_bytes)
    return {StatusCode::kInvalidArgument, "a worker id of " + std::to_string(id_bytes) +
                                              " bytes (1 to max_name_bytes " + std::to_string(limits.max_name_bytes) +
                                              ")"};
  if (hello->running() != nullptr && hello->running()->size() > WorkerHello::kMaxSlots + WorkerHello::kMaxPrefetch)
    return {StatusCode::kInvalidArgument,
            std::to_string(hello->running()->size()) + " running dispatches listed, more than any worker may hold"};
  if (hello->kernels() != nullptr) {
    if (hello->kernels()->size() > WorkerHello::kMaxKernels)
      return {StatusCode::kInvalidArgument, std::to_string(hello->kernels()->size()) + " kernels announced, at most " +
                                                std::to_string(WorkerHello::kMaxKernels)};
    for (const auto* k : *hello->kernels())
      if (k->size() == 0 || k->size() > limits.max_name_bytes)
        return {StatusCode::kInvalidArgument, "a kernel name of " + std::to_string(k->size()) +
                                                  " bytes (1 to max_name_bytes " +
                                                  std::to_string(limits.max_name_bytes) + ")"};
  }
  out = WorkerHello{};
  out.worker_id = text(hello->worker_id());
  out.incarnation = hello->incarnation();
  out.device = device_info_from(hello->device());
  if (hello->kernels() != nullptr)
    for (const auto* k : *hello->kernels()) out.kernels.emplace_back(view(k));
  out.slots = std::clamp<std::uint32_t>(hello->slots(), 1, WorkerHello::kMaxSlots);
  out.heartbeat_ms = std::clamp<std::uint32_t>(hello->heartbeat_ms(), 10, 60000);
  out.prefetch = std::min(hello->prefetch(), WorkerHello::kMaxPrefetch);
  out.connection = hello->connection();
  if (hello->running() != nullptr) out.running.assign(hello->running()->begin(), hello->running()->end());
  return {};
}

Status decode(const wire::Envelope& envelope, Heartbeat& out) {
  Status status;
  const auto* heartbeat = body_of<wire::Heartbeat>(envelope, wire::Body::Heartbeat, status);
  if (heartbeat == nullptr) return status;
  out.inflight = heartbeat->inflight();
  out.metrics.reset();
  if (heartbeat->metrics() != nullptr) out.metrics = device_metrics_from(heartbeat->metrics());
  out.incoming_bytes = heartbeat->incoming_bytes();
  return {};
}

Status decode(const wire::Envelope& envelope, Goodbye& out) {
  Status status;
  const auto* goodbye = body_of<wire::Goodbye>(envelope, wire::Body::Goodbye, status);
  if (goodbye == nullptr) return status;
  out.reason = text(goodbye->reason());
  return {};
}

Status decode(const wire::Envelope& envelope, Reregister& out) {
  Status status;
  const auto* reregister = body_of<wire::Reregister>(envelope, wire::Body::Reregister, status);
  if (reregister == nullptr) return status;
  out.reason = text(reregister->reason());
  return {};
}

Status decode(const wire::Envelope& envelope, Deactivate& out) {
  Status status;
  const auto* deactivate = body_of<wire::Deactivate>(envelope, wire::Body::Deactivate, status);
  if (deactivate == nullptr) return status;
  out.actor = text(deactivate->actor());
  return {};
}

Status decode(const wire::Envelope& envelope, Cancel& out) {
  Status status;
  const auto* cancel = body_of<wire::Cancel>(envelope, wire::Body::Cancel, status);
  if (cancel == nullptr) return status;
  out.dispatch_id = cancel->dispatch_id();
  // Stopping is what matters: any reason but a deadline counts as a cancel.
  out.reason = from_wire(cancel->reason()) == StatusCode::kDeadlineExceeded ? StatusCode::kDeadlineExceeded
                                                                            : StatusCode::kCancelled;
  return {};
}

Status decode(const wire::Envelope& envelope, Ping& out) {
  Status status;
  const auto* ping = body_of<wire::Ping>(envelope, wire::Body::Ping, status);
  if (ping == nullptr) return status;
  out.request_id = ping->request_id();
  return {};
}

Status decode(const wire::Envelope& envelope, Pong& out) {
  Status status;
  const auto* pong = body_of<wire::Pong>(envelope, wire::Body::Pong, status);
  if (pong == nullptr) return status;
  out.request_id = pong->request_id();
  out.broker_id = text(pong->broker_id());
  out.incarnation = pong->incarnation();
  return {};
}

Status decode(const wire::Envelope& envelope, CancelRequest& out) {
  Status status;
  const auto* cancel = body_of<wire::CancelRequest>(envelope, wire::Body::CancelRequest, status);
  if (cancel == nullptr) return status;
  out.job_id = cancel->job_id();
  return {};
}

Status decode(const wire::Envelope& envelope, StatusRequest& out) {
  Status status;
  const auto* request = body_of<wire::StatusRequest>(envelope, wire::Body::StatusRequest, status);
  if (request == nullptr) return status;
  out.request_id = request->request_id();
  return {};
}

Status decode(const wire::Envelope& envelope, QuotaRequest& out) {
  Status status;
  const auto* request = body_of<wire::QuotaRequest>(envelope, wire::Body::QuotaRequest, status);
  if (request == nullptr) return status;
  out.request_id = request->request_id();
  out.tenant = text(request->tenant());
  return {};
}

Status decode(const wire::Envelope& envelope, ActorRequest& out) {
  Status status;
  const auto* request = body_of<wire::ActorRequest>(envelope, wire::Body::ActorRequest, status);
  if (request == nullptr) return status;
  out.request_id = request->request_id();
  out.tenant = text(request->tenant());
  out.actor_id = text(request->actor_id());
  out.reset = request->reset();
  return {};
}

}  // namespace bridge::core::protocol
