#include "bridge/core/protocol_replies.hpp"

#include "bridge/core/job_codec.hpp"
#include "protocol_body.hpp"

namespace bridge::core::protocol {
using detail::body_of;
using detail::text;

using detail::strings;

zmq::message_t encode(const StatusReply& m) {
  flatbuffers::FlatBufferBuilder fbb(1024);
  std::vector<flatbuffers::Offset<wire::WorkerStatus>> workers;
  for (const WorkerInfo& w : m.fleet.workers)
    workers.push_back(wire::CreateWorkerStatus(fbb, fbb.CreateString(w.id), add_device_info(fbb, w.device),
                                               strings(fbb, w.kernels), w.slots, w.inflight,
                                               static_cast<std::uint32_t>(w.since_heartbeat.count()), w.completed,
                                               add_device_metrics(fbb, w.metrics), w.prefetch));
  const FleetStatus& f = m.fleet;
  auto body = wire::CreateStatusReply(fbb, m.request_id, fbb.CreateString(f.broker_id), fbb.CreateVector(workers),
                                      f.queued_jobs, f.inflight_jobs, f.redis_connected, f.default_timeout_ms);
  return finish_envelope(fbb, wire::Body::StatusReply, body.Union());
}

zmq::message_t encode(const QuotaReply& m) {
  flatbuffers::FlatBufferBuilder fbb(1024);
  std::vector<flatbuffers::Offset<wire::TenantQuotaStatus>> rows;
  for (const TenantQuotaInfo& t : m.report.tenants)
    rows.push_back(wire::CreateTenantQuotaStatus(fbb, fbb.CreateString(t.tenant), t.max_inflight_jobs,
                                                 t.max_inflight_bytes, t.rate, t.burst, t.weight, t.min_priority,
                                                 t.max_priority, strings(fbb, t.kernels), t.inflight_jobs,
                                                 t.inflight_bytes, t.rate_tokens, t.max_resident_bytes, t.max_job_ms));
  auto body =
      wire::CreateQuotaReply(fbb, m.request_id, fbb.CreateVector(rows), fbb.CreateString(m.report.tenants_file),
                             m.report.loaded_at_unix_ms, fbb.CreateString(m.error.message()), to_wire(m.error.code()));
  return finish_envelope(fbb, wire::Body::QuotaReply, body.Union());
}

zmq::message_t encode(const ActorReply& m) {
  flatbuffers::FlatBufferBuilder fbb(512);
  std::vector<flatbuffers::Offset<wire::TensorDesc>> resident;
  for (const ActorInfo::Resident& r : m.actor.resident) {
    auto name = fbb.CreateString(r.name);
    auto shape = fbb.CreateVector(r.shape);
    resident.push_back(wire::CreateTensorDesc(fbb, name, static_cast<wire::DType>(r.dtype), shape));
  }
  const ActorInfo& a = m.actor;
  auto body =
      wire::CreateActorReply(fbb, m.request_id, to_wire(m.status.code()), fbb.CreateString(m.status.message()), a.found,
                             a.version, fbb.CreateString(a.worker_id), fbb.CreateVector(resident), a.resident_bytes,
                             a.tenant_resident_bytes, a.updated_unix_ms, a.lost_version, fbb.CreateString(a.tenant));
  return finish_envelope(fbb, wire::Body::ActorReply, body.Union());
}

Status decode(const wire::Envelope& envelope, StatusReply& out) {
  Status status;
  const auto* reply = body_of<wire::StatusReply>(envelope, wire::Body::StatusReply, status);
  if (reply == nullptr) return status;
  out.request_id = reply->request_id();
  FleetStatus& f = out.fleet;
  f.broker_id = text(reply->broker_id());
  f.queued_jobs = reply->queued_jobs();
  f.inflight_jobs = reply->inflight_jobs();
  f.redis_connected = reply->redis_connected();
  f.default_timeout_ms = reply->default_timeout_ms();
  f.workers.clear();
  if (reply->workers() == nullptr) return {};
  for (const auto* w : *reply->workers()) {
    WorkerInfo info;
    info.id = text(w->worker_id());
    info.device = device_info_from(w->device());
    if (w->kernels())
      for (const auto* k : *w->kernels()) info.kernels.emplace_back(view(k));
    info.slots = w->slots();
    info.prefetch = w->prefetch();
    info.inflight = w->inflight();
    info.since_heartbeat = std::chrono::milliseconds(w->last_heartbeat_ms_ago());
    info.completed = w->completed();
    info.metrics = device_metrics_from(w->metrics());
    f.workers.push_back(std::move(info));
  }
  return {};
}

Status decode(const wire::Envelope& envelope, QuotaReply& out) {
  Status status;
  const auto* reply = body_of<wire::QuotaReply>(envelope, wire::Body::QuotaReply, status);
  if (reply == nullptr) return status;
  out.request_id = reply->request_id();
  out.error = {};
  if (reply->error() != nullptr && reply->error()->size() > 0)
    out.error = Status(
        reply->error_code() == wire::StatusCode::OK ? StatusCode::kUnknownTenant : from_wire(reply->error_code()),
        text(reply->error()));
  QuotaReport& r = out.report;
  r.tenants_file = text(reply->tenants_file());
  r.loaded_at_unix_ms = reply->loaded_at_unix_ms();
  r.tenants.clear();
  if (reply->tenants() == nullptr) return {};
  for (const auto* t : *reply->tenants()) {
    TenantQuotaInfo info;
    info.tenant = text(t->tenant());
    info.max_inflight_jobs = t->max_inflight_jobs();
    info.max_inflight_bytes = t->max_inflight_bytes();
    info.rate = t->rate();
    info.burst = t->burst();
    info.weight = t->weight();
    info.min_priority = t->min_priority();
    info.max_priority = t->max_priority();
    if (t->kernels())
      for (const auto* k : *t->kernels()) info.kernels.emplace_back(view(k));
    info.inflight_jobs = t->inflight_jobs();
    info.inflight_bytes = t->inflight_bytes();
    info.rate_tokens = t->rate_tokens();
    info.max_resident_bytes = t->max_resident_bytes();
    info.max_job_ms = t->max_job_ms();
    r.tenants.push_back(std::move(info));
  }
  return {};
}

Status decode(const wire::Envelope& envelope, ActorReply& out) {
  Status status;
  const auto* reply = body_of<wire::ActorReply>(envelope, wire::Body::ActorReply, status);
  if (reply == nullptr) return status;
  out.request_id = reply->request_id();
  out.status =
      reply->status() == wire::StatusCode::OK ? Status{} : Status(from_wire(reply->status()), text(reply->message()));
  ActorInfo& a = out.actor;
  a.found = reply->found();
  a.version = reply->version();
  a.worker_id = text(reply->worker_id());
  a.resident_bytes = reply->resident_bytes();
  a.tenant_resident_bytes = reply->tenant_resident_bytes();
  a.updated_unix_ms = reply->updated_unix_ms();
  a.lost_version = reply->lost_version();
  a.tenant = text(reply->tenant());
  a.resident.clear();
  if (reply->resident() == nullptr) return {};
  for (const auto* t : *reply->resident()) {
    // From the broker, but checked all the same: a bad description is skipped, never thrown on.
    if (static_cast<unsigned>(t->dtype()) > static_cast<unsigned>(wire::DType::MAX)) continue;
    ActorInfo::Resident r;
    r.name = text(t->name());
    r.dtype = static_cast<DType>(t->dtype());
    r.shape = shape_of(*t);
    try {
      r.bytes = static_cast<std::uint64_t>(element_count(r.shape)) * dtype_size(r.dtype);
    } catch (const std::invalid_argument&) {
      continue;  // negative or overflowing dimensions
    }
    a.resident.push_back(std::move(r));
  }
  return {};
}

}  // namespace bridge::core::protocol
