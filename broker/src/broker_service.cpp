#include "bridge/broker/broker_service.hpp"

#include <unistd.h>

#include <random>
#include <sstream>
#include <sys/stat.h>

#include <spdlog/spdlog.h>
#include <zmq_addon.hpp>

#include "bridge/core/config_map.hpp"
#include "bridge/core/job_codec.hpp"
#include "bridge/core/poll.hpp"

namespace bridge::broker {
namespace {

// Messages taken from one socket per wake-up before the other gets its turn.
constexpr int kMaxReceivesPerWakeup = 512;
constexpr int kSocketHighWaterMark = 100000;

std::string default_broker_id() {
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  std::random_device rd;
  char suffix[8];
  std::snprintf(suffix, sizeof suffix, "%04x", static_cast<unsigned>(rd() & 0xffff));
  return std::string(host) + "-" + std::to_string(::getpid()) + "-" + suffix;
}

std::string active_id(const std::string& client, std::uint64_t job_id) {
  return client + "/" + std::to_string(job_id);
}

std::uint64_t micros(Clock::duration d) {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(d).count());
}

std::string joined(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& s : items) out += (out.empty() ? "" : ", ") + s;
  return out;
}

// Identifies a version of a file cheaply: modification time (ns) and size; "" if it cannot be read.
std::string file_signature(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return "";
  return std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec) + ":" + std::to_string(st.st_size);
}

std::int64_t unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

BrokerOptions with_id(BrokerOptions options) {
  if (options.id.empty()) options.id = default_broker_id();
  options.validate();
  return options;
}

}  // namespace

BrokerService::BrokerService(BrokerOptions options, TenantTable tenants)
    : options_(with_id(std::move(options))),
      incarnation_((static_cast<std::uint64_t>(std::random_device{}()) << 32) ^ std::random_device{}()),
      tenants_(std::move(tenants)),
      context_(1),
      frontend_(context_, zmq::socket_type::router),
      backend_(context_, zmq::socket_type::router),
      redis_(RedisAddress::parse(options_.redis)),
      quotas_(redis_, options_.redis_prefix, options_.id),
      actor_store_(redis_, options_.redis_prefix),
      fleet_view_(redis_, options_.redis_prefix, options_.id) {}

BrokerService::~BrokerService() = default;

void BrokerService::run() {
  const auto max_frame = static_cast<std::int64_t>(std::max(options_.limits.max_tensor_bytes, options_.limits.max_header_bytes));
  for (zmq::socket_t* s : {&frontend_, &backend_}) {
    s->set(zmq::sockopt::router_mandatory, 1);  // a send to a vanished peer fails instead of vanishing
    s->set(zmq::sockopt::linger, 1000);
    s->set(zmq::sockopt::sndhwm, kSocketHighWaterMark);
    s->set(zmq::sockopt::rcvhwm, kSocketHighWaterMark);
    s->set(zmq::sockopt::maxmsgsize, max_frame);  // a peer sending a bigger frame is disconnected
  }
  backend_.set(zmq::sockopt::router_handover, 1);  // a reconnecting worker takes over its id
  for (auto [socket, endpoint, role] : {std::tuple{&frontend_, &options_.frontend, "frontend (clients)"},
                                        std::tuple{&backend_, &options_.backend, "backend (workers)"}}) {
    try {
      socket->bind(*endpoint);
    } catch (const zmq::error_t& e) {
      throw std::runtime_error(std::string("cannot bind the ") + role + " endpoint " + *endpoint + ": " + e.what());
    }
  }
  leases_.set_fail_open(options_.fail_open);
  if (!options_.metrics_listen.empty()) {
    // Readiness is read on the HTTP thread, so it looks only at the gauges the loop publishes.
    metrics_server_ = std::make_unique<metrics::MetricsServer>(
        options_.metrics_listen, metrics_.registry(), [this]() -> std::string {
          const auto& r = metrics_.registry();
          if (r.value("bridge_redis_connected", {}) < 1 && !options_.fail_open) return "Redis is not connected";
          if (r.value("bridge_workers", {}) < 1) return "no worker has registered";
          return {};
        });
    spdlog::info("metrics on http://{}:{}/metrics", options_.metrics_listen.substr(0, options_.metrics_listen.rfind(':')),
                 metrics_server_->port());
  }
  apply_tenants(TenantTable(tenants_), "start");
  tenants_signature_ = file_signature(options_.tenants_file);
  spdlog::info("broker {} listening: clients on {}, workers on {}, quotas in {} ({} tenants)", options_.id,
               options_.frontend, options_.backend, redis_.address().to_string(), tenants_.tenants().size());

  Clock::time_point drain_deadline{};
  while (true) {
    const auto now = Clock::now();
    redis_.tick(now);
    zmq::pollitem_t items[] = {{frontend_.handle(), 0, ZMQ_POLLIN, 0},
                               {backend_.handle(), 0, ZMQ_POLLIN, 0},
                               {nullptr, stop_.fd(), ZMQ_POLLIN, 0},
                               {nullptr, reload_.fd(), ZMQ_POLLIN, 0},
                               {nullptr, redis_.fd(), redis_.events(), 0}};
    const int count = redis_.fd() >= 0 ? 5 : 4;
    // Timers (deadlines, heartbeats, liveness) have 10 ms resolution at worst.
    core::poll(items, count, std::chrono::milliseconds(10));
    if (count == 5 && items[4].revents != 0) redis_.on_events(items[4].revents);
    // Before any message: leases follow the connection (dropped on loss, rewritten on reconnect).
    if (redis_.connected() != redis_was_connected_) {
      redis_was_connected_ = redis_.connected();
      leases_.on_redis(redis_was_connected_);
      if (!redis_was_connected_)
        spdlog::warn(options_.fail_open ? "redis_outage fail-open: admitting jobs against the quotas in force, counted by "
                                          "this broker alone, until Redis is back; actor calls wait for Redis"
                                        : "redis_outage fail-closed: new jobs are answered UNAVAILABLE until Redis is back");
      if (redis_was_connected_) quotas_.publish(tenants_);  // Redis may have restarted empty
    }
    if (items[3].revents & ZMQ_POLLIN) {
      reload_.drain();
      check_tenants_file(true);
    }
    if (items[1].revents & ZMQ_POLLIN) receive_workers();
    if (items[0].revents & ZMQ_POLLIN) receive_clients();
    if ((items[2].revents & ZMQ_POLLIN) && !stopping_) {
      stop_.drain();
      stopping_ = true;
      drain_deadline = Clock::now() + std::chrono::milliseconds(options_.drain_timeout_ms);
      spdlog::info("broker stopping: refusing new jobs, draining {} queued and {} in flight", scheduler_.size(),
                   workers_.inflight_jobs());
    }
    on_timers(Clock::now());
    pump_actors();
    if (stopping_ && (drained() || Clock::now() >= drain_deadline)) break;
  }

  // Whatever did not finish in time is answered now, so no client waits for a job that is gone.
  const Status gone(StatusCode::kUnavailable, "the broker shut down before the job finished; send it again");
  for (auto& job : scheduler_.take_all()) fail(*job, gone);
  for (auto& [key, job] : admitting_) fail(*job, gone);
  admitting_.clear();
  for (auto& job : actors_.take_all_waiting()) fail(*job, gone);
  for (auto* pending : {&loading_, &writing_}) {
    for (auto& [key, job] : *pending) fail(*job, gone);
    pending->clear();
  }
  std::vector<std::string> ids;
  for (const auto& [id, w] : workers_.workers()) ids.push_back(id);
  for (const auto& id : ids) {
    for (auto& job : workers_.remove(id))
      if (!job->answered) fail(*job, gone);
    // Tells the worker, so that it says hello again at once to whichever broker binds next.
    flatbuffers::FlatBufferBuilder fbb(64);
    auto body = wire::CreateGoodbye(fbb, fbb.CreateString("broker " + options_.id + " shutting down"));
    core::Frames frames;
    frames.push_back(core::finish_envelope(fbb, wire::Body::Goodbye, body.Union()));
    send_to_worker(id, std::move(frames));
  }
  spdlog::info("broker {} stopped", options_.id);
}

std::chrono::milliseconds BrokerService::liveness_ttl() const {
  return std::chrono::milliseconds(options_.heartbeat_ms) * options_.liveness;
}

bool BrokerService::drained() const {
  return scheduler_.empty() && admitting_.empty() && workers_.inflight_jobs() == 0 && actors_.waiting() == 0 &&
         loading_.empty() && writing_.empty();
}

// ---- Clients ---------------------------------------------------------------------------------------

void BrokerService::receive_clients() {
  for (int i = 0; i < kMaxReceivesPerWakeup; ++i) {
    core::Frames frames;
    if (!zmq::recv_multipart(frontend_, std::back_inserter(frames), zmq::recv_flags::dontwait)) return;
    handle_client_message(frames);
  }
}

void BrokerService::handle_client_message(core::Frames& frames) {
  std::string client = frames[0].to_string();  // ROUTER always prepends the routing id
  if (frames.size() < 2) return reply_error(client, 0, {StatusCode::kMalformedMessage, "message has no header frame"});
  if (frames.size() > options_.limits.max_tensors + 2)
    return reply_error(client, 0, {StatusCode::kTooLarge, std::to_string(frames.size() - 2) +
                                                              " payload frames; the limit is " +
                                                              std::to_string(options_.limits.max_tensors)});
  const wire::Envelope* envelope = nullptr;
  if (Status s = core::decode_envelope(frames[1], options_.limits, envelope); !s.is_ok()) {
    spdlog::warn("client {}: refused message: {}", client, s.to_string());
    return reply_error(client, 0, s);
  }
  switch (envelope->body_type()) {
    case wire::Body::JobRequest: {
      core::Frames job_frames(std::make_move_iterator(frames.begin() + 1), std::make_move_iterator(frames.end()));
      // Points into job_frames[0], whose bytes do not move when the vector does.
      const auto* request = flatbuffers::GetRoot<wire::Envelope>(job_frames[0].data())->body_as_JobRequest();
      return handle_request(std::move(client), std::move(job_frames), *request);
    }
    case wire::Body::StatusRequest: return handle_status(client, *envelope->body_as_StatusRequest());
    case wire::Body::QuotaRequest: return handle_quota(client, *envelope->body_as_QuotaRequest());
    case wire::Body::ActorRequest: return handle_actor_show(client, *envelope->body_as_ActorRequest());
    case wire::Body::Ping: return handle_ping(client, *envelope->body_as_Ping());
    default:
      return reply_error(client, 0, {StatusCode::kMalformedMessage, std::string("a client may send JobRequest, "
                                                                                "StatusRequest, QuotaRequest, "
                                                                                "ActorRequest or Ping, not ") +
                                                                        wire::EnumNameBody(envelope->body_type())});
  }
}

void BrokerService::handle_request(std::string client, core::Frames frames, const wire::JobRequest& request) {
  const std::uint64_t job_id = request.job_id();
  std::uint64_t payload_bytes = 0;
  Status status = core::validate_request(request, std::span(frames).subspan(1), options_.limits, payload_bytes);
  if (!status.is_ok()) {
    spdlog::warn("client {} job {}: refused: {}", client, job_id, status.to_string());
    return reply_error(client, job_id, status);
  }
  if (stopping_) return reply_error(client, job_id, {StatusCode::kUnavailable, "the broker is shutting down; send the job to another broker or retry"}, options_.retry_after_ms);
  if (!active_ids_.insert(active_id(client, job_id)).second) {
    spdlog::debug("client {} job {}: duplicate of a job in progress; the first one will answer", client, job_id);
    return;
  }
  auto job = std::make_unique<Job>();
  job->key = next_key_++;
  job->client = std::move(client);
  job->client_job_id = job_id;
  job->tenant = std::string(core::view(request.tenant()));
  job->kernel = std::string(core::view(request.kernel()));
  job->kernels.push_back(job->kernel);
  if (request.stages())
    for (const auto* stage : *request.stages()) job->kernels.emplace_back(core::view(stage->kernel()));
  job->placement = static_cast<Placement>(request.placement());
  job->priority = request.priority();
  job->received = Clock::now();
  job->deadline = job->received + std::chrono::milliseconds(request.timeout_ms() > 0 ? request.timeout_ms()
                                                                                     : options_.default_timeout_ms);
  job->frames = std::move(frames);
  job->payload_bytes = payload_bytes;

  const TenantQuota* quota = tenants_.find(job->tenant);
  if (quota == nullptr)
    return fail(*job, {StatusCode::kUnknownTenant, "tenant '" + job->tenant + "' is not configured in " +
                                                       options_.tenants_file + "; ask the fleet operator to add it"});
  for (const auto& kernel : job->kernels)
    if (!quota->allows_kernel(kernel))
      return fail(*job, {StatusCode::kPermissionDenied, "tenant '" + job->tenant + "' may not run kernel '" + kernel +
                                                            "' (its kernels in " + options_.tenants_file + ": " +
                                                            joined(quota->kernels) + ")"});
  if (job->priority < quota->min_priority || job->priority > quota->max_priority)
    return fail(*job, {StatusCode::kPermissionDenied, "tenant '" + job->tenant + "' may use priorities " +
                                                          std::to_string(quota->min_priority) + ".." +
                                                          std::to_string(quota->max_priority) + ", not " +
                                                          std::to_string(job->priority)});
  if (job->payload_bytes > quota->max_inflight_bytes)
    return fail(*job, {StatusCode::kTooLarge, "the job's inputs are " + std::to_string(job->payload_bytes) +
                                                  " bytes, more than tenant '" + job->tenant + "' may have in flight (max_inflight_bytes " +
                                                  std::to_string(quota->max_inflight_bytes) + ")"});
  for (const auto& kernel : job->kernels) {
    if (workers_.empty() || workers_.any_has_kernel(kernel)) continue;
    std::vector<std::string> known;
    for (const auto& [id, w] : workers_.workers())
      for (const auto& k : w.kernels)
        if (std::find(known.begin(), known.end(), k) == known.end()) known.push_back(k);
    std::sort(known.begin(), known.end());
    return fail(*job, {StatusCode::kUnknownKernel,
                       "no worker in the fleet has kernel '" + kernel + "'; available: " + joined(known)});
  }
  if (!workers_.empty() && !workers_.could_run(job->kernels, job->placement))
    return fail(*job, {StatusCode::kNoCapableWorker,
                       std::string("no worker can run '") + joined(job->kernels) + "' with placement " +
                           placement_name(job->placement) +
                           (job->kernels.size() > 1 ? " (no worker of that device kind has every kernel of the pipeline)"
                                                    : " (no worker of that device kind has it)")});
  if (scheduler_.size() + admitting_.size() + actors_.waiting() >= options_.max_queued_jobs)
    return fail(*job, {StatusCode::kQueueFull, "the broker holds " + std::to_string(options_.max_queued_jobs) +
                                                   " waiting jobs (max_queued_jobs); retry later"},
                options_.retry_after_ms);

  if (request.actor_id() != nullptr && request.actor_id()->size() > 0) {
    // Admitted when its turn comes, so that quota waits never reorder an actor's calls.
    job->actor = job->tenant + "/" + std::string(core::view(request.actor_id()));
    return actor_call_arrived(std::move(job), std::string(core::view(request.actor_id())));
  }
  admit(std::move(job));
}

void BrokerService::admit(std::unique_ptr<Job> job) {
  const TenantQuota* quota = tenants_.find(job->tenant);
  if (quota == nullptr)
    return fail(*job, {StatusCode::kUnknownTenant, "tenant '" + job->tenant + "' was removed from " + options_.tenants_file});
  if (!options_.enforce_quotas || job->holds_quota) return admitted(std::move(job));
  const std::uint64_t key = job->key;
  const std::string tenant = job->tenant;
  const std::uint64_t bytes = job->payload_bytes;
  QuotaStore::Decision refusal;
  switch (leases_.admit(tenant, *quota, bytes, liveness_ttl(),
                        [this, key, tenant, bytes](QuotaStore::Decision d) { on_admission(key, tenant, bytes, d); },
                        &refusal)) {
    case QuotaLeases::Admit::kNow:
      job->holds_quota = true;
      return admitted(std::move(job));
    case QuotaLeases::Admit::kLater:
      admitting_.emplace(key, std::move(job));
      return;
    case QuotaLeases::Admit::kUnreachable:
      return fail(*job, {StatusCode::kUnavailable, "the quota store (" + redis_.address().to_string() +
                                                       ") is unreachable; retry later"},
                  options_.retry_after_ms);
    case QuotaLeases::Admit::kRefused:
      return refuse_for_quota(*job, refusal);
  }
}

void BrokerService::on_admission(std::uint64_t key, const std::string& tenant, std::uint64_t bytes,
                                 const QuotaStore::Decision& decision) {
  auto it = admitting_.find(key);
  if (it == admitting_.end()) {
    // The job was already answered (admission timeout, shutdown): hand back a slot granted too late.
    if (decision.admitted) leases_.release(tenant, bytes);
    return;
  }
  std::unique_ptr<Job> job = std::move(it->second);
  admitting_.erase(it);
  if (!decision.reachable) {
    spdlog::error("quota check for tenant {} failed: {}", job->tenant,
                  decision.error.empty() ? "connection to Redis lost" : decision.error);
    return fail(*job, {StatusCode::kUnavailable, "the quota store could not decide (" +
                                                     (decision.error.empty() ? std::string("connection lost") : decision.error) +
                                                     "); retry later"},
                options_.retry_after_ms);
  }
  if (!decision.admitted) return refuse_for_quota(*job, decision);
  job->holds_quota = true;
  admitted(std::move(job));
}

void BrokerService::refuse_for_quota(Job& job, const QuotaStore::Decision& decision) {
  metrics_.quota_refused(job.tenant, decision.limit);
  const TenantQuota* quota = tenants_.find(job.tenant);
  const std::uint32_t retry_after = decision.retry_after_ms > 0 ? decision.retry_after_ms : options_.retry_after_ms;
  std::string why = "tenant '" + job.tenant + "' ";
  if (quota == nullptr) {
    why += "was removed from " + options_.tenants_file;
  } else if (decision.limit == "max_inflight_bytes") {
    why += "has " + std::to_string(decision.in_use) + " input bytes in flight; this job's " +
           std::to_string(job.payload_bytes) + " would pass its max_inflight_bytes of " +
           std::to_string(quota->max_inflight_bytes);
  } else if (decision.limit == "rate") {
    std::ostringstream rate;
    rate << quota->rate << " jobs/s (burst " << quota->effective_burst() << ")";
    why += "is over its rate of " + rate.str();
  } else {
    why += "has " + std::to_string(decision.in_use) + " jobs in flight, its max_inflight_jobs is " +
           std::to_string(quota->max_inflight_jobs);
  }
  fail(job, {StatusCode::kResourceExhausted, why + "; retry after " + std::to_string(retry_after) + " ms"}, retry_after);
}

void BrokerService::admitted(std::unique_ptr<Job> job) {
  if (job->actor.empty()) return route(std::move(job));
  start_actor_call(std::move(job));
}

void BrokerService::handle_ping(const std::string& client, const wire::Ping& ping) {
  flatbuffers::FlatBufferBuilder fbb(128);
  auto body = wire::CreatePong(fbb, ping.request_id(), fbb.CreateString(options_.id), incarnation_);
  core::Frames frames;
  frames.push_back(core::finish_envelope(fbb, wire::Body::Pong, body.Union()));
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
  auto body = wire::CreateStatusReply(fbb, request.request_id(), fbb.CreateString(options_.id), fbb.CreateVector(workers),
                                      static_cast<std::uint32_t>(scheduler_.size() + admitting_.size()),
                                      static_cast<std::uint32_t>(workers_.inflight_jobs()), redis_.connected());
  core::Frames frames;
  frames.push_back(core::finish_envelope(fbb, wire::Body::StatusReply, body.Union()));
  reply(client, std::move(frames));
}

void BrokerService::reply(const std::string& client, core::Frames frames) {
  frames.insert(frames.begin(), zmq::message_t(client.data(), client.size()));
  try {
    if (!zmq::send_multipart(frontend_, frames, zmq::send_flags::dontwait))
      spdlog::warn("client {} is not reading its results (queue full); dropped one", client);
  } catch (const zmq::error_t& e) {
    // EHOSTUNREACH: the client disconnected. Its job ended anyway; nothing else to do.
    spdlog::debug("client {} unreachable: {}", client, e.what());
  }
}

void BrokerService::reply_error(const std::string& client, std::uint64_t job_id, const Status& status,
                                std::uint32_t retry_after_ms) {
  core::Frames frames;
  frames.push_back(core::make_error_result(job_id, status, retry_after_ms));
  reply(client, std::move(frames));
}

// ---- Workers ---------------------------------------------------------------------------------------

void BrokerService::receive_workers() {
  for (int i = 0; i < kMaxReceivesPerWakeup; ++i) {
    core::Frames frames;
    if (!zmq::recv_multipart(backend_, std::back_inserter(frames), zmq::recv_flags::dontwait)) return;
    handle_worker_message(frames);
  }
}

void BrokerService::handle_worker_message(core::Frames& frames) {
  const std::string id = frames[0].to_string();
  const wire::Envelope* envelope = nullptr;
  Status s = frames.size() < 2 ? Status(StatusCode::kMalformedMessage, "no header frame")
                               : core::decode_envelope(frames[1], options_.limits, envelope);
  if (!s.is_ok()) {
    spdlog::warn("worker {}: refused message: {}", id, s.to_string());
    return;
  }
  if (envelope->body_type() == wire::Body::WorkerHello) return on_hello(id, *envelope->body_as_WorkerHello());
  WorkerRecord* worker = workers_.find(id);
  if (worker == nullptr) {
    // After a broker restart, or after this broker declared the worker dead: ask it to start over.
    return send_reregister(id, "unknown worker");
  }
  worker->last_seen = Clock::now();
  switch (envelope->body_type()) {
    case wire::Body::Heartbeat: {
      const auto* heartbeat = envelope->body_as_Heartbeat();
      worker->metrics = core::device_metrics_from(heartbeat->metrics());
      metrics_.worker_seen(*worker);
      fleet_view_.publish(*worker, std::chrono::milliseconds(worker->heartbeat_ms) * options_.liveness);
      break;
    }
    case wire::Body::JobResult: on_result(*worker, frames); break;
    case wire::Body::Goodbye:
      spdlog::info("worker {} said goodbye ({}); {} job(s) still running there", id,
                   core::view(envelope->body_as_Goodbye()->reason()), worker->inflight.size());
      worker->draining = true;
      if (worker->inflight.empty()) {
        workers_.remove(id);
        fleet_view_.remove(id);
        metrics_.worker_gone(id);
      }
      break;
    default: spdlog::warn("worker {}: ignored a {} message", id, wire::EnumNameBody(envelope->body_type()));
  }
}

void BrokerService::on_hello(const std::string& id, const wire::WorkerHello& hello) {
  if (core::view(hello.worker_id()) != id)
    spdlog::warn("worker hello names itself '{}' but connected as '{}'; using the connection id",
                 core::view(hello.worker_id()), id);
  WorkerRecord record;
  record.id = id;
  record.incarnation = hello.incarnation();
  record.device = core::device_info_from(hello.device());
  if (hello.kernels())
    for (const auto* k : *hello.kernels()) record.kernels.emplace_back(core::view(k));
  record.slots = std::max<std::uint32_t>(1, hello.slots());
  record.heartbeat_ms = std::clamp<std::uint32_t>(hello.heartbeat_ms(), 10, 60000);
  record.last_seen = Clock::now();
  std::vector<std::unique_ptr<Job>> orphaned;
  const bool known = workers_.find(id) != nullptr;
  WorkerRecord& worker = workers_.upsert(std::move(record), orphaned);
  spdlog::info("worker {} {}: {} '{}', {} slots, {} kernels", id, known ? "re-registered" : "registered",
               device_kind_name(worker.device.kind), worker.device.name, worker.slots, worker.kernels.size());
  for (auto& job : orphaned) retry_elsewhere(std::move(job), id);
  fleet_view_.publish(worker, std::chrono::milliseconds(worker.heartbeat_ms) * options_.liveness);
  metrics_.worker_seen(worker);
  dispatch_queued();
}

void BrokerService::on_result(WorkerRecord& worker, core::Frames& frames) {
  auto* envelope = wire::GetMutableEnvelope(frames[1].data());
  auto* result = static_cast<wire::JobResult*>(envelope->mutable_body());
  auto it = worker.inflight.find(result->job_id());
  if (it == worker.inflight.end()) {
    // A late answer for a job already re-dispatched elsewhere (or answered): exactly-once delivery.
    spdlog::debug("worker {}: dropped result of unknown dispatch {}", worker.id, result->job_id());
    return;
  }
  std::unique_ptr<Job> job = std::move(it->second);
  worker.inflight.erase(it);
  job->dispatch_id = 0;  // off the worker
  ++worker.completed;
  if (job->answered) {
    // Its deadline passed while the worker held it; the client was answered then. Only the credit
    // (and an actor's turn) was still in use. An actor's activation may have moved past Redis.
    spdlog::debug("worker {}: result of job {} arrived after its deadline; dropped", worker.id, job->client_job_id);
    if (ActorEntry* actor = job->actor.empty() ? nullptr : actors_.find(job->actor)) deactivate(*actor);
    release_actor_turn(*job);
    return dispatch_queued();
  }

  // [worker id][header][returned outputs...][kept outputs (actor calls)...]
  const std::size_t returned = result->outputs() == nullptr ? 0 : result->outputs()->size();
  std::uint64_t bytes = 0;
  Status valid = frames.size() < 2 + returned
                     ? Status(StatusCode::kMalformedMessage, "result has fewer frames than outputs")
                     : core::validate_tensors(result->outputs(), std::span(frames).subspan(2, returned),
                                              options_.limits, bytes);
  if (valid.is_ok())
    valid = core::validate_tensors(result->kept(), std::span(frames).subspan(2 + returned), options_.limits, bytes);
  if (valid.is_ok() && job->actor.empty() && result->kept() != nullptr && result->kept()->size() > 0)
    valid = Status(StatusCode::kMalformedMessage, "kept outputs in the result of a job that is no actor call");
  // The broker rewrites the worker-leg id and its own timing in place; the worker wrote these fields
  // with force_defaults so that they exist in the buffer (docs/protocol.md).
  const auto queued = micros(job->dispatched - job->received);
  wire::Timings* timings = result->mutable_timings();
  if (valid.is_ok() && (timings == nullptr || !result->mutate_job_id(job->client_job_id) ||
                        !result->mutate_attempts(static_cast<std::uint8_t>(std::min(job->attempts, 255)))))
    valid = Status(StatusCode::kMalformedMessage, "result lacks job_id, attempts or timings fields");
  if (!valid.is_ok()) {
    spdlog::error("worker {}: corrupt result for job {}: {}", worker.id, job->client_job_id, valid.to_string());
    if (ActorEntry* actor = job->actor.empty() ? nullptr : actors_.find(job->actor)) deactivate(*actor);
    fail(*job, {StatusCode::kInternal, "worker " + worker.id + " sent a corrupt result: " + valid.message()});
  } else {
    timings->mutate_queued_us(queued);
    if (!job->actor.empty()) {
      on_actor_result(worker, std::move(job), frames, returned);
    } else {
      core::Frames out(std::make_move_iterator(frames.begin() + 1), std::make_move_iterator(frames.end()));
      finish(*job, std::move(out));
    }
  }
  if (worker.draining && worker.inflight.empty()) {
    const std::string id = worker.id;
    workers_.remove(id);
    fleet_view_.remove(id);
    metrics_.worker_gone(id);
    return;
  }
  dispatch_queued();
}

void BrokerService::lose_worker(const std::string& id, const std::string& reason) {
  auto jobs = workers_.remove(id);
  fleet_view_.remove(id);
  metrics_.worker_gone(id);
  spdlog::warn("worker {} lost ({}); re-queueing {} job(s)", id, reason, jobs.size());
  for (auto& job : jobs) {
    job->dispatch_id = 0;
    if (job->answered) {  // answered at its deadline already
      release_actor_turn(*job);
      continue;
    }
    if (job->attempts >= static_cast<int>(options_.max_attempts)) {
      fail(*job, {StatusCode::kWorkerLost, "the job's worker was lost on each of " + std::to_string(job->attempts) +
                                               " attempts (last: " + id + ", " + reason + ")"});
      continue;
    }
    retry_elsewhere(std::move(job), id);
  }
  dispatch_queued();
}

void BrokerService::retry_elsewhere(std::unique_ptr<Job> job, const std::string& lost_worker) {
  job->dispatch_id = 0;
  if (job->actor.empty()) return scheduler_.requeue(std::move(job));
  // The activation died with its worker: the call keeps its turn and runs again on state reloaded
  // from Redis, which holds everything up to the call before it.
  if (ActorEntry* actor = actors_.find(job->actor); actor != nullptr && actor->worker == lost_worker) actor->worker.clear();
  start_actor_call(std::move(job));
}

void BrokerService::send_to_worker(const std::string& id, core::Frames frames) {
  frames.insert(frames.begin(), zmq::message_t(id.data(), id.size()));
  try {
    if (!zmq::send_multipart(backend_, frames, zmq::send_flags::dontwait))
      spdlog::warn("worker {} is not reading (queue full)", id);
  } catch (const zmq::error_t& e) {
    spdlog::debug("worker {} unreachable: {}", id, e.what());
  }
}

void BrokerService::send_reregister(const std::string& id, const std::string& reason) {
  flatbuffers::FlatBufferBuilder fbb(64);
  auto body = wire::CreateReregister(fbb, fbb.CreateString(reason));
  core::Frames frames;
  frames.push_back(core::finish_envelope(fbb, wire::Body::Reregister, body.Union()));
  send_to_worker(id, std::move(frames));
}

// ---- Scheduling ------------------------------------------------------------------------------------

void BrokerService::route(std::unique_ptr<Job> job) {
  if (scheduler_.empty()) {
    if (WorkerRecord* worker = workers_.select(*job)) {
      if (dispatch(*worker, job)) return;
    }
  }
  scheduler_.enqueue(std::move(job));  // wait for a free slot, behind jobs already waiting
}

void BrokerService::dispatch_queued() {
  // Offer every worker with free credits the queued jobs it can run, until no more fit.
  bool progress = true;
  while (progress && !scheduler_.empty()) {
    progress = false;
    for (auto& [id, worker] : workers_.workers()) {
      WorkerRecord& w = worker;
      while (w.has_free_slot() && !scheduler_.empty()) {
        auto job = scheduler_.next([&](const Job& j) { return workers_.can_take(w, j); });
        if (!job) break;
        if (!dispatch(w, job)) {
          scheduler_.requeue(std::move(job));
          return;  // the worker vanished; the liveness check will remove it
        }
        progress = true;
      }
    }
  }
}

bool BrokerService::dispatch(WorkerRecord& worker, std::unique_ptr<Job>& job) {
  const auto now = Clock::now();
  job->dispatch_id = next_dispatch_id_++;
  job->dispatched = now;
  ++job->attempts;
  flatbuffers::FlatBufferBuilder fbb(64);
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(job->deadline - now).count();
  flatbuffers::Offset<flatbuffers::String> actor = 0;
  flatbuffers::Offset<flatbuffers::Vector<flatbuffers::Offset<wire::TensorDesc>>> activation = 0;
  if (!job->actor.empty()) {
    actor = fbb.CreateString(job->actor);
    if (job->activate) {
      std::vector<flatbuffers::Offset<wire::TensorDesc>> descs;
      for (const Tensor& t : job->activation) descs.push_back(core::add_tensor_desc(fbb, t));
      activation = fbb.CreateVector(descs);
    }
  }
  auto body = wire::CreateDispatch(fbb, job->dispatch_id, static_cast<std::uint32_t>(std::max<std::int64_t>(1, left)),
                                   actor, job->actor_version, job->activate, activation);
  core::Frames frames;
  frames.reserve(2 + job->frames.size() + job->activation.size());
  frames.push_back(zmq::message_t(worker.id.data(), worker.id.size()));
  frames.push_back(core::finish_envelope(fbb, wire::Body::Dispatch, body.Union()));
  // Shares the bytes (reference-counted) rather than copying: the job keeps its frames in case the
  // worker dies and the job must be sent again.
  for (auto& f : job->frames) frames.emplace_back().copy(f);
  if (job->activate)
    for (const Tensor& t : job->activation) frames.push_back(core::tensor_to_frame(t));
  try {
    if (!zmq::send_multipart(backend_, frames, zmq::send_flags::dontwait)) return false;
  } catch (const zmq::error_t&) {
    return false;
  }
  if (job->activate) on_activation_sent(*job, worker);
  worker.last_dispatch = now;
  metrics_.job_dispatched(*job);
  worker.inflight.emplace(job->dispatch_id, std::move(job));
  return true;
}

// ---- Endings ---------------------------------------------------------------------------------------

void BrokerService::finish(Job& job, core::Frames result) {
  {
    const auto* r = flatbuffers::GetRoot<wire::Envelope>(result[0].data())->body_as_JobResult();
    metrics_.job_answered(job, core::from_wire(r->status()), core::view(r->fallback_reason()), core::view(r->worker_id()));
  }
  reply(job.client, std::move(result));
  forget(job);
}

void BrokerService::fail(Job& job, const Status& status, std::uint32_t retry_after_ms) {
  metrics_.job_answered(job, status.code(), {}, {});
  spdlog::debug("client {} job {} ({}/{}): {}", job.client, job.client_job_id, job.tenant, job.kernel, status.to_string());
  reply_error(job.client, job.client_job_id, status, retry_after_ms);
  forget(job);
}

void BrokerService::forget(Job& job) {
  job.answered = true;
  // A call still on its worker keeps the actor's turn until the worker answers or is lost.
  if (job.dispatch_id == 0) release_actor_turn(job);
  if (job.holds_quota) {
    leases_.release(job.tenant, job.payload_bytes);
    job.holds_quota = false;
  }
  active_ids_.erase(active_id(job.client, job.client_job_id));
}

// ---- Tenants ---------------------------------------------------------------------------------------

void BrokerService::check_tenants_file(bool forced) {
  const std::string signature = file_signature(options_.tenants_file);
  if (!forced && signature == tenants_signature_) return;
  tenants_signature_ = signature;
  try {
    apply_tenants(TenantTable::load_file(options_.tenants_file), forced ? "SIGHUP" : "file changed");
  } catch (const std::exception& e) {  // ConfigError, or anything a parser may throw: never fatal here
    spdlog::error("tenants not reloaded; the quotas in force stay: {}", e.what());
  }
}

void BrokerService::apply_tenants(TenantTable table, const char* why) {
  int added = 0, changed = 0, removed = 0;
  for (const auto& [name, quota] : table.tenants()) {
    const TenantQuota* before = tenants_.find(name);
    added += before == nullptr;
    changed += before != nullptr && !(*before == quota);
  }
  for (const auto& [name, quota] : tenants_.tenants()) removed += table.find(name) == nullptr;
  for (const auto& [name, quota] : table.tenants()) scheduler_.set_weight(name, quota.weight);
  tenants_ = std::move(table);
  tenants_loaded_at_ms_ = unix_ms();
  quotas_.publish(tenants_);
  if (std::string(why) != "start")
    spdlog::info("tenants reloaded ({}): {} tenants; {} added, {} changed, {} removed", why, tenants_.tenants().size(),
                 added, changed, removed);
}

void BrokerService::handle_quota(const std::string& client, const wire::QuotaRequest& request) {
  // Usage comes from Redis (fleet-wide), one script per tenant; the reply goes out when all answered.
  struct Pending {
    std::string client;
    std::uint64_t request_id = 0;
    std::vector<std::pair<std::string, TenantQuota>> tenants;
    std::vector<QuotaStore::Usage> usage;
    std::size_t outstanding = 0;
    std::string error;
  };
  auto pending = std::make_shared<Pending>();
  pending->client = client;
  pending->request_id = request.request_id();
  const std::string wanted(core::view(request.tenant()));
  for (const auto& [name, quota] : tenants_.tenants())
    if (wanted.empty() || name == wanted) pending->tenants.emplace_back(name, quota);
  if (!wanted.empty() && pending->tenants.empty())
    pending->error = "tenant '" + wanted + "' is not configured in " + options_.tenants_file;
  pending->usage.resize(pending->tenants.size());

  auto send = [this](const Pending& p) {
    flatbuffers::FlatBufferBuilder fbb(1024);
    std::vector<flatbuffers::Offset<wire::TenantQuotaStatus>> rows;
    for (std::size_t i = 0; i < p.tenants.size(); ++i) {
      const auto& [name, q] = p.tenants[i];
      const QuotaStore::Usage& u = p.usage[i];
      std::vector<flatbuffers::Offset<flatbuffers::String>> kernels;
      for (const auto& k : q.kernels) kernels.push_back(fbb.CreateString(k));
      rows.push_back(wire::CreateTenantQuotaStatus(fbb, fbb.CreateString(name), q.max_inflight_jobs, q.max_inflight_bytes,
                                                   q.rate, q.effective_burst(), q.weight, q.min_priority, q.max_priority,
                                                   fbb.CreateVector(kernels), u.known ? u.jobs : -1, u.known ? u.bytes : -1,
                                                   u.known ? u.rate_tokens : -1, q.max_resident_bytes));
    }
    auto body = wire::CreateQuotaReply(fbb, p.request_id, fbb.CreateVector(rows), fbb.CreateString(options_.tenants_file),
                                       tenants_loaded_at_ms_, fbb.CreateString(p.error));
    core::Frames frames;
    frames.push_back(core::finish_envelope(fbb, wire::Body::QuotaReply, body.Union()));
    reply(p.client, std::move(frames));
  };
  for (std::size_t i = 0; i < pending->tenants.size(); ++i) {
    const bool asked = quotas_.usage(pending->tenants[i].first, pending->tenants[i].second,
                                     [pending, i, send](QuotaStore::Usage u) {
                                       pending->usage[i] = u;
                                       if (--pending->outstanding == 0) send(*pending);
                                     });
    if (asked) ++pending->outstanding;
  }
  if (pending->outstanding == 0) send(*pending);  // nothing asked (Redis down, or no tenant): answer now
}

// ---- Timers ----------------------------------------------------------------------------------------

void BrokerService::on_timers(Clock::time_point now) {
  if (options_.tenants_reload_ms > 0 && now >= next_tenants_check_) {
    next_tenants_check_ = now + std::chrono::milliseconds(options_.tenants_reload_ms);
    check_tenants_file(false);
  }
  for (auto& job : scheduler_.take_expired(now)) {
    const bool capable = workers_.could_run(job->kernels, job->placement);
    fail(*job, {StatusCode::kDeadlineExceeded,
                capable ? "no worker slot became free before the job's deadline (fleet busy; raise timeout or add workers)"
                        : "no worker able to run '" + joined(job->kernels) + "' joined before the job's deadline"});
  }
  for (auto& job : actors_.take_expired(now))
    fail(*job, {StatusCode::kDeadlineExceeded, "the actor's earlier calls did not finish before this call's deadline"});
  // The loop wakes for every message under load; what follows (the sweep of jobs waiting for Redis,
  // heartbeats, liveness) runs at most every 10 ms.
  if (now < next_admission_sweep_) return;
  next_admission_sweep_ = now + std::chrono::milliseconds(10);
  metrics_.fleet(scheduler_.size() + admitting_.size() + actors_.waiting(), workers_.inflight_jobs(), workers_.size(),
                 actors_.size(), redis_.connected());
  const auto admission_limit = std::chrono::milliseconds(options_.admission_timeout_ms);
  for (auto it = admitting_.begin(); it != admitting_.end();) {
    if (now - it->second->received > admission_limit) {
      fail(*it->second, {StatusCode::kUnavailable, "the quota store did not answer within " +
                                                       std::to_string(options_.admission_timeout_ms) + " ms; retry later"},
           options_.retry_after_ms);
      it = admitting_.erase(it);
    } else {
      ++it;
    }
  }
  if (now < next_heartbeat_) return;
  next_heartbeat_ = now + std::chrono::milliseconds(options_.heartbeat_ms);
  quotas_.keep_alive(liveness_ttl());
  leases_.trim();
  deactivate_idle_actors(now);
  for (const auto& id : workers_.silent_since(now, options_.liveness)) lose_worker(id, "silent past its liveness");
  // A job whose worker has not answered a heartbeat after its deadline is answered now, so that the
  // client and the tenant's quota are never held by a result that may not come. The worker's credit
  // stays in use until it answers or is declared dead.
  const auto grace = std::chrono::milliseconds(options_.heartbeat_ms);
  for (auto& [id, w] : workers_.workers())
    for (auto& [dispatch_id, job] : w.inflight)
      if (!job->answered && now > job->deadline + grace)
        fail(*job, {StatusCode::kDeadlineExceeded, "worker " + id + " did not answer before the job's deadline"});
  flatbuffers::FlatBufferBuilder fbb(64);
  auto body = wire::CreateHeartbeat(fbb, 0);
  const zmq::message_t heartbeat = core::finish_envelope(fbb, wire::Body::Heartbeat, body.Union());
  for (const auto& [id, w] : workers_.workers()) {
    core::Frames frames;
    frames.emplace_back().copy(const_cast<zmq::message_t&>(heartbeat));
    send_to_worker(id, std::move(frames));
  }
}

}  // namespace bridge::broker
