#include "bridge/core/protocol_jobs.hpp"

#include "bridge/core/job_codec.hpp"

namespace bridge::core::protocol {
namespace {

flatbuffers::Offset<flatbuffers::Vector<flatbuffers::Offset<wire::TensorDesc>>> descriptions(
    flatbuffers::FlatBufferBuilder& fbb, std::span<const Tensor> tensors, const std::vector<bool>& inlined = {}) {
  std::vector<flatbuffers::Offset<wire::TensorDesc>> out;
  out.reserve(tensors.size());
  for (std::size_t i = 0; i < tensors.size(); ++i)
    out.push_back(add_tensor_desc(fbb, tensors[i], i < inlined.size() && inlined[i]));
  return fbb.CreateVector(out);
}

}  // namespace

zmq::message_t encode(const DispatchHeader& m) {
  flatbuffers::FlatBufferBuilder fbb(128 + m.request.size());
  flatbuffers::Offset<flatbuffers::Vector<std::uint8_t>> request;
  if (!m.request.empty()) {
    fbb.ForceVectorAlignment(m.request.size(), 1, 8);  // an Envelope: read in place
    request = fbb.CreateVector(m.request.data(), m.request.size());
  }
  auto actor = m.actor.empty() ? flatbuffers::Offset<flatbuffers::String>() : fbb.CreateString(m.actor);
  auto activation = m.activate ? descriptions(fbb, m.activation)
                               : flatbuffers::Offset<flatbuffers::Vector<flatbuffers::Offset<wire::TensorDesc>>>();
  auto tenant = m.tenant.empty() ? flatbuffers::Offset<flatbuffers::String>() : fbb.CreateString(m.tenant);
  auto body = wire::CreateDispatch(fbb, m.dispatch_id, m.deadline_ms, actor, m.actor_version, m.activate, activation,
                                   m.max_run_ms, request, tenant);
  // The broker reads Batches: the worker may send the answer to this, and what follows, in one.
  return finish_envelope(fbb, wire::Body::Dispatch, body.Union(), /*batches=*/true);
}

zmq::message_t encode(const ResultHeader& m) {
  flatbuffers::FlatBufferBuilder fbb(512);
  fbb.ForceDefaults(true);  // the broker rewrites job_id and timings in place (docs/protocol.md)
  auto outputs = descriptions(fbb, m.returned, m.inline_returned);
  auto kept = m.kept.empty() ? flatbuffers::Offset<flatbuffers::Vector<flatbuffers::Offset<wire::TensorDesc>>>()
                             : descriptions(fbb, m.kept);
  std::vector<flatbuffers::Offset<wire::StageTiming>> stages;
  for (const StageTiming& s : m.stages)
    stages.push_back(
        wire::CreateStageTiming(fbb, fbb.CreateString(s.kernel), static_cast<std::uint64_t>(s.compute.count())));
  auto message = fbb.CreateString(m.status.message());
  auto worker_id = fbb.CreateString(m.worker_id);
  auto device_name = fbb.CreateString(m.device->name);
  auto fallback = fbb.CreateString(m.fallback_reason);
  auto stage_vector = stages.empty() ? 0 : fbb.CreateVector(stages);
  const wire::Timings timings(0, m.transfer_us, m.compute_us);
  auto result = wire::CreateJobResult(fbb, m.dispatch_id, to_wire(m.status.code()), message, outputs, worker_id,
                                      static_cast<wire::DeviceKind>(m.device->kind), device_name, fallback, &timings, 0,
                                      0, stage_vector, m.batch_size, kept, m.actor_version);
  return finish_envelope(fbb, wire::Body::JobResult, result.Union());
}

}  // namespace bridge::core::protocol
