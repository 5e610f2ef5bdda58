// BrokerService: what clients and tools may ask of the broker besides jobs (see broker_service.hpp).
#include <spdlog/spdlog.h>

#include "bridge/broker/broker_service.hpp"
#include "bridge/core/job_codec.hpp"
#include "bridge/core/protocol.hpp"
#include "bridge/core/protocol_replies.hpp"

namespace bridge::broker {

void BrokerService::handle_ping(const std::string& client, const wire::Ping& ping) {
  core::Frames frames;
  frames.push_back(core::protocol::encode(core::protocol::Pong{ping.request_id(), options_.id, incarnation_}));
  reply(client, std::move(frames));
}

void BrokerService::handle_status(const std::string& client, const wire::StatusRequest& request) {
  const auto now = Clock::now();
  core::protocol::StatusReply answer{.request_id = request.request_id(),
                                     .fleet = {.broker_id = options_.id,
                                               .queued_jobs = static_cast<std::uint32_t>(jobs_.waiting()),
                                               .inflight_jobs = static_cast<std::uint32_t>(workers_.inflight_jobs()),
                                               .redis_connected = redis_.connected(),
                                               .default_timeout_ms = options_.default_timeout_ms}};
  for (const auto& [id, w] : workers_.workers())
    answer.fleet.workers.push_back(
        {.id = id,
         .device = w.device,
         .kernels = w.kernels,
         .slots = w.slots,
         .prefetch = w.prefetch,
         .inflight = static_cast<std::uint32_t>(w.inflight.size()),
         .since_heartbeat = std::chrono::duration_cast<std::chrono::milliseconds>(now - w.last_seen),
         .completed = w.completed,
         .metrics = w.metrics});
  core::Frames frames;
  frames.push_back(core::protocol::encode(answer));
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
    Status error;
  };
  auto pending = std::make_shared<Pending>();
  pending->client = client;
  pending->request_id = request.request_id();
  // A tenant's key sees its own tenant (empty names it); an operator key, or security: none, every one.
  std::string wanted;
  if (Status s = resolve_tenant(caller, core::view(request.tenant()), /*for_job=*/false, wanted); !s.is_ok()) {
    pending->error = {StatusCode::kPermissionDenied, s.message()};
  } else {
    for (const auto& [name, quota] : tenants_.tenants())
      if (wanted.empty() || name == wanted) pending->tenants.emplace_back(name, quota);
    if (!wanted.empty() && pending->tenants.empty()) {
      pending->error = {StatusCode::kUnknownTenant,
                        "tenant '" + wanted + "' is not configured in " + options_.tenants_file};
    }
  }
  pending->usage.resize(pending->tenants.size());

  auto send = [this](const Pending& p) {
    core::protocol::QuotaReply answer{
        .request_id = p.request_id,
        .report = {.tenants_file = options_.tenants_file, .loaded_at_unix_ms = tenants_loaded_at_ms_},
        .error = p.error};
    for (std::size_t i = 0; i < p.tenants.size(); ++i) {
      const auto& [name, q] = p.tenants[i];
      const QuotaStore::Usage& u = p.usage[i];
      answer.report.tenants.push_back({.tenant = name,
                                       .max_inflight_jobs = q.max_inflight_jobs,
                                       .max_inflight_bytes = q.max_inflight_bytes,
                                       .rate = q.rate,
                                       .burst = q.effective_burst(),
                                       .weight = q.weight,
                                       .min_priority = q.min_priority,
                                       .max_priority = q.max_priority,
                                       .kernels = q.kernels,
                                       .inflight_jobs = u.known ? u.jobs : -1,
                                       .inflight_bytes = u.known ? u.bytes : -1,
                                       .rate_tokens = u.known ? u.rate_tokens : -1,
                                       .max_resident_bytes = q.max_resident_bytes,
                                       .max_job_ms = q.max_job_ms});
    }
    core::Frames frames;
    frames.push_back(core::protocol::encode(answer));
    reply(p.client, std::move(frames));
  };
  // Usage costs Redis one script per tenant, on the connection admission uses: a flood of quota
  // requests must not delay admission, so only a few are asked at once; the others are answered
  // with the limits alone and an error that says to retry.
  if (quota_queries_in_flight_ >= kMaxQuotaQueriesInFlight) {
    pending->error = {StatusCode::kUnavailable, "the broker is answering " + std::to_string(kMaxQuotaQueriesInFlight) +
                                                    " quota requests already; retry in a moment"};
    return send(*pending);
  }
  ++quota_queries_in_flight_;
  auto done = [this, pending, send] {
    --quota_queries_in_flight_;
    send(*pending);
  };
  for (std::size_t i = 0; i < pending->tenants.size(); ++i) {
    const bool asked =
        quotas_.usage(pending->tenants[i].first, pending->tenants[i].second, [pending, i, done](QuotaStore::Usage u) {
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
  auto send = [this, client, request_id, tenant](const Status& status, const ActorState* state,
                                                 const std::string& worker, std::int64_t tenant_bytes) {
    core::protocol::ActorReply answer{.request_id = request_id, .status = status};
    ActorInfo& actor = answer.actor;
    actor.tenant = tenant;
    actor.worker_id = worker;
    actor.tenant_resident_bytes = static_cast<std::uint64_t>(std::max<std::int64_t>(0, tenant_bytes));
    if (state != nullptr) {
      actor.found = state->found;
      actor.version = state->version;
      actor.updated_unix_ms = state->updated_unix_ms;
      actor.lost_version = state->lost_version;
      for (const Tensor& t : state->tensors) {
        const auto bytes = static_cast<std::uint64_t>(t.element_count()) * dtype_size(t.dtype());
        actor.resident.push_back({.name = t.name(), .dtype = t.dtype(), .shape = t.shape(), .bytes = bytes});
        actor.resident_bytes += bytes;
      }
    }
    core::Frames frames;
    frames.push_back(core::protocol::encode(answer));
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
  auto show = [=, this] {
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
      answered({StatusCode::kUnavailable, "Redis (" + redis_.address().to_string() + ") is unreachable; retry"},
               nullptr, "", 0);
  };
  if (!request.reset()) return show();
  // The actor as it is after the reset is the answer: the reset's script runs before the load's
  // commands on the one connection.
  const Status reset = actor_calls_.reset(tenant, actor_id, [=](bool reachable, std::uint64_t version) {
    if (!reachable)
      return answered({StatusCode::kUnavailable, "Redis did not answer the reset; retry"}, nullptr, "", 0);
    if (version == ActorStateStore::kResetRefusedBusy)
      return answered({StatusCode::kAborted, "actor " + tenant + "/" + actor_id +
                                                 " has a call in flight through another broker; reset it once it ends"},
                      nullptr, "", 0);
    show();
  });
  if (!reset.is_ok()) answered(reset, nullptr, "", 0);
}

}  // namespace bridge::broker
