// BrokerService: what clients and tools may ask of the broker besides jobs (see broker_service.hpp).
#include <spdlog/spdlog.h>

#include "bridge/broker/broker_service.hpp"
#include "bridge/core/job_codec.hpp"
#include "bridge/core/protocol.hpp"

namespace bridge::broker {

void BrokerService::handle_ping(const std::string& client, const wire::Ping& ping) {
  core::Frames frames;
  frames.push_back(core::protocol::encode(core::protocol::Pong{ping.request_id(), options_.id, incarnation_}));
  reply(client, std::move(frames));
}

void BrokerService::handle_status(const std::string& client, const wire::StatusRequest& request) {
  flatbuffers::FlatBufferBuilder fbb(1024);
  const auto now = Clock::now();
  std::vector<flatbuffers::Offset<wire::WorkerStatus>> workers;
  for (const auto& [id, w] : workers_.workers()) {
    std::vector<flatbuffers::Offset<flatbuffers::String>> kernels;
    for (const auto& k : w.kernels) kernels.push_back(fbb.CreateString(k));
    const auto ago = std::chrono::duration_cast<std::chrono::milliseconds>(now - w.last_seen).count();
    workers.push_back(wire::CreateWorkerStatus(fbb, fbb.CreateString(id), core::add_device_info(fbb, w.device),
                                               fbb.CreateVector(kernels), w.slots,
                                               static_cast<std::uint32_t>(w.inflight.size()),
                                               static_cast<std::uint32_t>(ago), w.completed,
                                               core::add_device_metrics(fbb, w.metrics)));
  }
  auto body = wire::CreateStatusReply(fbb, request.request_id(), fbb.CreateString(options_.id),
                                      fbb.CreateVector(workers), static_cast<std::uint32_t>(jobs_.waiting()),
                                      static_cast<std::uint32_t>(workers_.inflight_jobs()), redis_.connected(),
                                      options_.default_timeout_ms);
  core::Frames frames;
  frames.push_back(core::finish_envelope(fbb, wire::Body::StatusReply, body.Union()));
  reply(client, std::move(frames));
}

void BrokerService::handle_quota(const std::string& client, const Caller& caller, const wire::QuotaRequest& request) {
  // Usage comes from Redis (fleet-wide), one script per tenant; the reply goes out when all answered.
  struct Pending {
    std::string client;
    std::uint64_t request_id = 0;
    std::vector<std::pair<std::string, TenantQuota>> tenants;
    std::vector<QuotaStore::Usage> usage;
    std::size_t outstanding = 0;
    std::string error;
    wire::StatusCode error_code = wire::StatusCode::OK;
  };
  auto pending = std::make_shared<Pending>();
  pending->client = client;
  pending->request_id = request.request_id();
  // A tenant's key sees its own tenant (empty names it); an operator key, or security: none, every one.
  std::string wanted;
  if (Status s = resolve_tenant(caller, core::view(request.tenant()), /*for_job=*/false, wanted); !s.is_ok()) {
    pending->error = s.message();
    pending->error_code = wire::StatusCode::PERMISSION_DENIED;
  } else {
    for (const auto& [name, quota] : tenants_.tenants())
      if (wanted.empty() || name == wanted) pending->tenants.emplace_back(name, quota);
    if (!wanted.empty() && pending->tenants.empty()) {
      pending->error = "tenant '" + wanted + "' is not configured in " + options_.tenants_file;
      pending->error_code = wire::StatusCode::UNKNOWN_TENANT;
    }
  }
  pending->usage.resize(pending->tenants.size());

  auto send = [this](const Pending& p) {
    flatbuffers::FlatBufferBuilder fbb(1024);
    std::vector<flatbuffers::Offset<wire::TenantQuotaStatus>> rows;
    for (std::size_t i = 0; i < p.tenants.size(); ++i) {
      const auto& [name, q] = p.tenants[i];
      const QuotaStore::Usage& u = p.usage[i];
      std::vector<flatbuffers::Offset<flatbuffers::String>> kernels;
      for (const auto& k : q.kernels) kernels.push_back(fbb.CreateString(k));
      rows.push_back(wire::CreateTenantQuotaStatus(
          fbb, fbb.CreateString(name), q.max_inflight_jobs, q.max_inflight_bytes, q.rate, q.effective_burst(), q.weight,
          q.min_priority, q.max_priority, fbb.CreateVector(kernels), u.known ? u.jobs : -1, u.known ? u.bytes : -1,
          u.known ? u.rate_tokens : -1, q.max_resident_bytes, q.max_job_ms));
    }
    auto body =
        wire::CreateQuotaReply(fbb, p.request_id, fbb.CreateVector(rows), fbb.CreateString(options_.tenants_file),
                               tenants_loaded_at_ms_, fbb.CreateString(p.error), p.error_code);
    core::Frames frames;
    frames.push_back(core::finish_envelope(fbb, wire::Body::QuotaReply, body.Union()));
    reply(p.client, std::move(frames));
  };
  // Usage costs Redis one script per tenant, on the connection admission uses: a flood of quota
  // requests must not delay admission, so only a few are asked at once; the others are answered
  // with the limits alone and an error that says to retry.
  if (quota_queries_in_flight_ >= kMaxQuotaQueriesInFlight) {
    pending->error = "the broker is answering " + std::to_string(kMaxQuotaQueriesInFlight) +
                     " quota requests already; usage is left out (-1); retry in a moment";
    return send(*pending);
  }
  ++quota_queries_in_flight_;
  auto done = [this, pending, send] {
    --quota_queries_in_flight_;
    send(*pending);
  };
  for (std::size_t i = 0; i < pending->tenants.size(); ++i) {
    const bool asked = quotas_.usage(pending->tenants[i].first, pending->tenants[i].second,
                                     [pending, i, done](QuotaStore::Usage u) {
                                       pending->usage[i] = u;
                                       if (--pending->outstanding == 0) done();
                                     });
    if (asked) ++pending->outstanding;
  }
  if (pending->outstanding == 0) done();  // nothing asked (Redis down, or no tenant): answer now
}

void BrokerService::handle_actor_show(const std::string& client, const Caller& caller,
                                      const wire::ActorRequest& request) {
  const std::uint64_t request_id = request.request_id();
  const std::string actor_id(core::view(request.actor_id()));
  std::string tenant;
  const Status allowed = resolve_tenant(caller, core::view(request.tenant()), /*for_job=*/false, tenant);
  auto send = [this, client, request_id](const Status& status, const ActorState* state, const std::string& worker,
                                         std::int64_t tenant_bytes) {
    flatbuffers::FlatBufferBuilder fbb(512);
    std::vector<flatbuffers::Offset<wire::TensorDesc>> resident;
    std::uint64_t bytes = 0;
    if (state != nullptr)
      for (const Tensor& t : state->tensors) {
        resident.push_back(core::add_tensor_desc(fbb, t));
        bytes += static_cast<std::uint64_t>(t.element_count()) * dtype_size(t.dtype());
      }
    auto body = wire::CreateActorReply(
        fbb, request_id, core::to_wire(status.code()), fbb.CreateString(status.message()),
        state != nullptr && state->found, state == nullptr ? 0 : state->version, fbb.CreateString(worker),
        fbb.CreateVector(resident), bytes, static_cast<std::uint64_t>(std::max<std::int64_t>(0, tenant_bytes)),
        state == nullptr ? 0 : state->updated_unix_ms);
    core::Frames frames;
    frames.push_back(core::finish_envelope(fbb, wire::Body::ActorReply, body.Union()));
    reply(client, std::move(frames));
  };
  if (!allowed.is_ok()) return send(allowed, nullptr, "", 0);
  if (tenant.empty() || actor_id.empty())
    return send({StatusCode::kInvalidArgument, "name both the tenant and the actor id"}, nullptr, "", 0);
  if (tenants_.find(tenant) == nullptr)
    return send({StatusCode::kUnknownTenant, "tenant '" + tenant + "' is not configured in " + options_.tenants_file},
                nullptr, "", 0);
  // Each costs Redis two commands on the connection admission uses: a flood must not delay admission.
  if (actor_queries_in_flight_ >= kMaxActorQueriesInFlight)
    return send({StatusCode::kUnavailable, "the broker is answering " + std::to_string(kMaxActorQueriesInFlight) +
                                               " actor requests already; retry in a moment"},
                nullptr, "", 0);
  ++actor_queries_in_flight_;
  auto answered = [this, send](const Status& status, const ActorState* state, const std::string& worker,
                               std::int64_t tenant_bytes) {
    --actor_queries_in_flight_;
    send(status, state, worker, tenant_bytes);
  };
  const std::string key = tenant + "/" + actor_id;
  const bool asked =
      actor_store_.load(tenant, actor_id, /*with_data=*/false, [=, this](bool reachable, ActorState state) {
        if (!reachable) return answered({StatusCode::kUnavailable, "Redis did not answer; retry"}, nullptr, "", 0);
        // This broker's own record is the freshest word on where the actor is active.
        const ActorEntry* actor = actor_calls_.find(key);
        const std::string worker = actor != nullptr ? actor->worker : state.worker;
        auto shared = std::make_shared<ActorState>(std::move(state));
        if (!actor_store_.tenant_bytes(
                tenant, [=](bool ok, std::int64_t bytes) { answered({}, shared.get(), worker, ok ? bytes : 0); }))
          answered({}, shared.get(), worker, 0);
      });
  if (!asked)
    answered({StatusCode::kUnavailable, "Redis (" + redis_.address().to_string() + ") is unreachable; retry"}, nullptr,
             "", 0);
}

}  // namespace bridge::broker
