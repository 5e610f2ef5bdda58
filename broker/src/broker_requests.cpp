// BrokerService: requests and tenants (see broker_service.hpp).
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>

#include <spdlog/spdlog.h>

#include "bridge/broker/broker_service.hpp"
#include "bridge/broker/request_checks.hpp"
#include "bridge/core/job_codec.hpp"

namespace bridge::broker {
namespace {

// Identifies a version of a file cheaply: modification time (ns) and size; "" if it cannot be read.
std::string file_signature(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return "";
  return std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec) + ":" +
         std::to_string(st.st_size);
}

// The same for a directory tree of key files: each file's path and signature.
std::string tree_signature(const std::string& dir) {
  std::error_code ec;
  std::string out;
  for (auto it = std::filesystem::recursive_directory_iterator(dir, ec); !ec && it != std::filesystem::end(it);
       it.increment(ec))
    if (it->is_regular_file()) out += it->path().string() + "=" + file_signature(it->path().string()) + ";";
  return out;
}

// Whether a watched file's signature differs from the one last seen (recorded now). The first look
// only records it: what is in force at start came from that file.
bool changed(const std::string& signature, std::string& seen, bool forced) {
  const bool first = seen.empty();
  const bool differs = signature != seen;
  seen = signature;
  return forced || (!first && differs);
}

std::int64_t unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

Status BrokerService::resolve_tenant(const Caller& caller, std::string_view named, bool for_job,
                                     std::string& tenant) const {
  if (!options_.secure) {  // the field is believed; a query naming none asks about every tenant
    tenant = !named.empty() ? std::string(named) : for_job ? "default" : "";
    return {};
  }
  if (caller.tenant.empty() && for_job)
    return {StatusCode::kPermissionDenied, "this key is an operator key (operator_keys in " + options_.tenants_file +
                                               "): it may look at every tenant but runs no jobs; use a tenant's key"};
  if (named.empty() || named == caller.tenant || (caller.is_operator && !for_job)) {
    tenant = named.empty() ? caller.tenant : std::string(named);
    return {};
  }
  return {StatusCode::kPermissionDenied, "this client's key is enrolled for tenant '" + caller.tenant +
                                             "' and may not act for tenant '" + std::string(named) +
                                             "'; leave the tenant empty or name your own"};
}

void BrokerService::handle_request(std::string client, const Caller& caller, core::Frames frames,
                                   const wire::JobRequest& request) {
  const std::uint64_t job_id = request.job_id();
  // Its answer, a refusal too, may go with the client's others in a Batch.
  const bool batches = flatbuffers::GetRoot<wire::Envelope>(frames[0].data())->batches();
  std::uint64_t payload_bytes = 0;
  Status status =
      frames.size() - 1 > options_.limits.max_tensors
          ? Status(StatusCode::kTooLarge, std::to_string(frames.size() - 1) + " payload frames; the limit is " +
                                              std::to_string(options_.limits.max_tensors) + " (max_tensors)")
          : core::validate_request(request, std::span(frames).subspan(1), options_.limits, payload_bytes);
  std::string tenant;
  if (status.is_ok()) status = resolve_tenant(caller, core::view(request.tenant()), /*for_job=*/true, tenant);
  if (!status.is_ok()) {
    log_refusal("client " + client + " job " + std::to_string(job_id) + ": refused: " + status.to_string());
    return reply_error(client, job_id, status, 0, batches);
  }
  if (ledger_.tenant_over_budget(tenant)) {
    metrics_.quota_refused(tenant, "max_unread_tenant_bytes");
    return reply_error(
        client, job_id,
        {StatusCode::kResourceExhausted,
         "tenant '" + tenant + "' has " + std::to_string(ledger_.tenant_unread_bytes(tenant)) +
             " bytes of results its clients have not read, over the broker's max_unread_tenant_bytes of " +
             std::to_string(options_.max_unread_tenant_bytes) +
             "; read your results (on every connection) before sending more jobs"},
        options_.retry_after_ms, batches);
  }
  if (ledger_.over_budget(client)) {
    metrics_.quota_refused(tenant, "max_unread_result_bytes");
    return reply_error(client, job_id,
                       {StatusCode::kResourceExhausted,
                        "this client has " + std::to_string(ledger_.unread_bytes(client)) +
                            " bytes of results it has not read, over the broker's max_unread_result_bytes of " +
                            std::to_string(options_.max_unread_result_bytes) +
                            "; read your results before sending more jobs (a client that stays over it for " +
                            std::to_string(options_.client_stall_ms) + " ms is dropped)"},
                       options_.retry_after_ms, batches);
  }
  if (stopping_)
    return reply_error(
        client, job_id,
        {StatusCode::kUnavailable, "the broker is shutting down; send the job to another broker or retry"},
        options_.retry_after_ms, batches);
  auto made = std::make_unique<Job>();
  made->key = next_key_++;
  made->client = std::move(client);
  made->client_key = caller.key;
  made->client_job_id = job_id;
  made->tenant = std::move(tenant);
  made->kernel = std::string(core::view(request.kernel()));
  made->kernels.push_back(made->kernel);
  if (request.stages())
    for (const auto* stage : *request.stages()) made->kernels.emplace_back(core::view(stage->kernel()));
  made->placement = static_cast<Placement>(request.placement());
  made->priority = request.priority();
  made->received = Clock::now();
  made->deadline = made->received + std::chrono::milliseconds(request.timeout_ms() > 0 ? request.timeout_ms()
                                                                                       : options_.default_timeout_ms);
  made->frames = std::move(frames);
  made->payload_bytes = payload_bytes;
  made->inline_outputs = request.inline_outputs();
  made->batches = batches;
  Job* job = jobs_.add(std::move(made));
  if (job == nullptr) {
    spdlog::debug("client job {}: duplicate of a job in progress; the first one will answer", job_id);
    return;
  }
  bindings_.job_added(job->client);
  std::uint32_t retry_after_ms = 0;
  if (Status refused =
          check_request(*job, tenants_, workers_, jobs_.waiting(),
                        {options_.tenants_file, options_.max_queued_jobs, options_.retry_after_ms}, retry_after_ms);
      !refused.is_ok())
    return fail(*job, refused, retry_after_ms);
  if (request.actor_id() != nullptr && request.actor_id()->size() > 0) {
    // Admitted when its turn comes, so that quota waits never reorder an actor's calls.
    job->actor = job->tenant + "/" + std::string(core::view(request.actor_id()));
    job->actor_version_seen = request.actor_version_seen();
    return actor_calls_.arrived(*job, std::string(core::view(request.actor_id())), tenants_.find(job->tenant));
  }
  admit(*job);
}

void BrokerService::log_refusal(const std::string& line) {
  std::uint64_t held_back = 0;
  if (!refusal_log_.take(Clock::now(), held_back)) return spdlog::debug("{}", line);
  if (held_back == 0) return spdlog::warn("{}", line);
  spdlog::warn("{} ({} more refused or dropped client messages since the last such line, logged at debug)", line,
               held_back);
}

void BrokerService::admitted(Job& job) {
  if (job.actor.empty()) return route(job);
  actor_calls_.start(job);
}

void BrokerService::quota_refused(const std::string& tenant, const std::string& limit) {
  metrics_.quota_refused(tenant, limit);
}

// ---- Tenants ---------------------------------------------------------------------------------------

void BrokerService::check_tenants_file(bool forced) {
  std::string signature = file_signature(options_.tenants_file);
  if (!options_.client_keys_dir.empty()) signature += "|" + tree_signature(options_.client_keys_dir);
  if (!changed(signature, tenants_signature_, forced)) return;
  try {
    apply_tenants(load_tenants(options_), forced ? "SIGHUP" : "file changed");
  } catch (const std::exception& e) {  // ConfigError, or anything a parser may throw: never fatal here
    spdlog::error("tenants not reloaded; the quotas in force stay: {}", e.what());
  }
}

void BrokerService::check_workers_file(bool forced) {
  if (!changed(file_signature(options_.workers_file), workers_signature_, forced)) return;
  try {
    WorkerKeys keys = WorkerKeys::load_file(options_.workers_file);
    if (keys == worker_keys_) return;
    worker_keys_ = std::move(keys);
    spdlog::info("workers file reloaded: {} enrolled worker keys", worker_keys_.size());
  } catch (const std::exception& e) {
    spdlog::error("workers file not reloaded; the worker keys in force stay: {}", e.what());
  }
}

ZapAnswer BrokerService::decide_zap(const ZapRequest& request) {
  if (!options_.secure) return {"200", "OK", ""};
  if (request.mechanism != "CURVE" || request.public_key.empty()) return {"400", "this broker requires CURVE", ""};
  if (request.domain == ZapHandler::kWorkersDomain) {
    if (worker_keys_.enrolled(request.public_key)) return {"200", "OK", request.public_key};
    log_refusal("refused a worker connection from " + request.address + ": key " + request.public_key + " is not in " +
                options_.workers_file);
    return {"400", "worker key not enrolled", ""};
  }
  // Clients: only keys listed in tenants.yaml (or client_keys_dir). A stranger never gets to send a
  // message, so it cannot make the broker buffer one (libzmq reads a whole multipart message before
  // the broker sees any of it); the client library turns the refusal into UNAUTHENTICATED. A key
  // removed while connected is refused at its next message (handle_client_message).
  if (request.domain == ZapHandler::kClientsDomain) {
    if (tenants_.tenant_of_key(request.public_key) != nullptr || tenants_.is_operator_key(request.public_key))
      return {"200", "OK", request.public_key};
    log_refusal("refused a client connection from " + request.address + ": key " + request.public_key +
                " is not listed in " + options_.tenants_file);
    return {"400", "client key not enrolled", ""};
  }
  return {"400", "unknown ZAP domain", ""};
}

void BrokerService::apply_tenants(TenantTable table, const char* why) {
  int added = 0, changed = 0, removed = 0;
  for (const auto& [name, quota] : table.tenants()) {
    const TenantQuota* before = tenants_.find(name);
    added += before == nullptr;
    changed += before != nullptr && !(*before == quota);
  }
  for (const auto& [name, quota] : tenants_.tenants()) removed += table.find(name) == nullptr;
  const std::size_t keys_added = table.keys_not_in(tenants_), keys_removed = tenants_.keys_not_in(table);
  for (const auto& [name, quota] : table.tenants()) scheduler_.set_weight(name, quota.weight);
  tenants_ = std::move(table);
  tenants_loaded_at_ms_ = unix_ms();
  quotas_.publish(tenants_);
  metrics_.set_tenants(tenants_);
  if (std::string(why) != "start")
    spdlog::info(
        "tenants reloaded ({}): {} tenants; {} added, {} changed, {} removed; {} client keys, {} added, {} "
        "removed (a removed key's next request is refused)",
        why, tenants_.tenants().size(), added, changed, removed, tenants_.key_count(), keys_added, keys_removed);
}

}  // namespace bridge::broker
