#include "reports.hpp"

#include <cstdio>
#include <iostream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "tensor_text.hpp"

namespace bridgectl {
namespace {

using namespace bridge;
// Keys in the order written, so that output reads as documented and scripts may grep it.
using json = nlohmann::ordered_json;

constexpr std::size_t kMaxPrintedValues = 16;

long long us(std::chrono::microseconds d) { return static_cast<long long>(d.count()); }

// Names a peer chose (a worker id, a kernel) may hold anything; JSON dumps them replacing bytes
// that are not UTF-8, rather than refusing the whole answer.
void print_json(const json& document) {
  std::cout << document.dump(-1, ' ', false, json::error_handler_t::replace) << "\n";
}

std::string joined(const std::vector<std::string>& words) {
  std::string out;
  for (const auto& w : words) out += (out.empty() ? "" : ",") + w;
  return out;
}

std::string limit_text(double v) {
  if (v <= 0) return "-";
  std::ostringstream o;
  o << v;
  return o.str();
}

json tensor_json(const Tensor& t) {
  json values = json::array();
  for (std::size_t i = 0; i < static_cast<std::size_t>(t.element_count()); ++i) values.push_back(value_json(t, i));
  return {{"name", t.name()}, {"dtype", dtype_name(t.dtype())}, {"shape", t.shape()}, {"values", std::move(values)}};
}

}  // namespace

std::string usage_of(std::int64_t used, std::uint64_t limit) {
  return (used < 0 ? std::string("?") : std::to_string(used)) + "/" + std::to_string(limit);
}

void print_result(const JobResult& r, bool as_json) {
  if (as_json) {
    json outputs = json::array();
    for (const Tensor& t : r.outputs) outputs.push_back(tensor_json(t));
    print_json({{"job_id", r.job_id},
                {"status", status_code_name(r.status.code())},
                {"message", r.status.message()},
                {"worker_id", r.worker_id},
                {"device_kind", device_kind_name(r.device_kind)},
                {"device_name", r.device_name},
                {"fallback_reason", r.fallback_reason},
                {"attempts", r.attempts},
                {"retry_after_ms", r.retry_after.count()},
                {"timings_us",
                 {{"queued", us(r.timings.queued)},
                  {"transfer", us(r.timings.transfer)},
                  {"compute", us(r.timings.compute)},
                  {"total", us(r.timings.total)}}},
                {"outputs", std::move(outputs)}});
    return;
  }
  if (!r.ok()) {
    std::cout << "job " << r.job_id << " failed: " << r.status.to_string() << "\n";
    if (r.retry_after.count() > 0) std::cout << "  retry after " << r.retry_after.count() << " ms\n";
    return;
  }
  std::cout << "job " << r.job_id << " OK on " << r.worker_id << " (" << device_kind_name(r.device_kind) << ": "
            << r.device_name << ")  queued " << us(r.timings.queued) << " us, transfer " << us(r.timings.transfer)
            << " us, compute " << us(r.timings.compute) << " us, total " << us(r.timings.total) << " us\n";
  for (const Tensor& t : r.outputs) {
    std::cout << "  " << (t.name().empty() ? "out" : t.name()) << " " << dtype_name(t.dtype()) << shape_text(t.shape())
              << " =";
    const auto n = static_cast<std::size_t>(t.element_count());
    for (std::size_t i = 0; i < std::min(n, kMaxPrintedValues); ++i) std::cout << (i ? ", " : " ") << value_text(t, i);
    if (n > kMaxPrintedValues) std::cout << ", ... (" << n << " values)";
    std::cout << "\n";
  }
}

void print_status(const FleetStatus& fleet, bool as_json) {
  if (as_json) {
    json workers = json::array();
    for (const auto& w : fleet.workers)
      workers.push_back({{"id", w.id},
                         {"device_kind", device_kind_name(w.device.kind)},
                         {"device_name", w.device.name},
                         {"slots", w.slots},
                         {"prefetch", w.prefetch},
                         {"inflight", w.inflight},
                         {"completed", w.completed},
                         {"last_heartbeat_ms_ago", w.since_heartbeat.count()},
                         {"kernels", w.kernels}});
    print_json({{"broker_id", fleet.broker_id},
                {"queued_jobs", fleet.queued_jobs},
                {"inflight_jobs", fleet.inflight_jobs},
                {"redis_connected", fleet.redis_connected},
                {"workers", std::move(workers)}});
    return;
  }
  std::cout << "broker " << fleet.broker_id << ": " << fleet.workers.size() << " worker(s), " << fleet.queued_jobs
            << " queued, " << fleet.inflight_jobs << " in flight, redis "
            << (fleet.redis_connected ? "connected" : "DOWN") << "\n";
  std::printf("%-32s %-6s %-28s %5s %8s %8s %9s %10s  %s\n", "WORKER", "DEVICE", "DEVICE NAME", "SLOTS", "PREFETCH",
              "INFLIGHT", "COMPLETED", "HEARTBEAT", "KERNELS");
  for (const auto& w : fleet.workers)
    std::printf("%-32s %-6s %-28.28s %5u %8u %8u %9llu %7lld ms  %s\n", w.id.c_str(), device_kind_name(w.device.kind),
                w.device.name.c_str(), w.slots, w.prefetch, w.inflight, static_cast<unsigned long long>(w.completed),
                static_cast<long long>(w.since_heartbeat.count()), joined(w.kernels).c_str());
}

void print_quotas(const QuotaReport& report, bool as_json) {
  if (as_json) {
    json tenants = json::array();
    for (const auto& t : report.tenants)
      tenants.push_back({{"tenant", t.tenant},
                         {"max_inflight_jobs", t.max_inflight_jobs},
                         {"max_inflight_bytes", t.max_inflight_bytes},
                         {"rate", t.rate},
                         {"burst", t.burst},
                         {"weight", t.weight},
                         {"min_priority", t.min_priority},
                         {"max_priority", t.max_priority},
                         {"inflight_jobs", t.inflight_jobs},
                         {"inflight_bytes", t.inflight_bytes},
                         {"rate_tokens", t.rate_tokens},
                         {"kernels", t.kernels}});
    print_json({{"tenants_file", report.tenants_file},
                {"loaded_at_unix_ms", report.loaded_at_unix_ms},
                {"tenants", std::move(tenants)}});
    return;
  }
  std::cout << "quotas from " << report.tenants_file << "; usage fleet-wide (- = no limit, ? = Redis unreachable)\n";
  std::printf("%-20s %13s %23s %14s %7s %10s  %s\n", "TENANT", "JOBS", "BYTES", "RATE/s (BURST)", "WEIGHT", "PRIORITY",
              "KERNELS");
  for (const auto& t : report.tenants) {
    const std::string jobs = usage_of(t.inflight_jobs, t.max_inflight_jobs);
    const std::string bytes = usage_of(t.inflight_bytes, t.max_inflight_bytes);
    const std::string rate = limit_text(t.rate) + (t.rate > 0 ? " (" + limit_text(t.burst) + ")" : "");
    const std::string priority = std::to_string(t.min_priority) + ".." + std::to_string(t.max_priority);
    const std::string kernels = joined(t.kernels);
    std::printf("%-20s %13s %23s %14s %7s %10s  %s\n", t.tenant.c_str(), jobs.c_str(), bytes.c_str(), rate.c_str(),
                limit_text(t.weight).c_str(), priority.c_str(), kernels.empty() ? "all" : kernels.c_str());
  }
}

void print_actor(const ActorInfo& actor, bool as_json) {
  if (as_json) {
    json resident = json::array();
    for (const auto& r : actor.resident)
      resident.push_back({{"name", r.name}, {"dtype", dtype_name(r.dtype)}, {"shape", r.shape}, {"bytes", r.bytes}});
    print_json({{"tenant", actor.tenant},
                {"actor_id", actor.actor_id},
                {"found", actor.found},
                {"version", actor.version},
                {"worker_id", actor.worker_id},
                {"resident_bytes", actor.resident_bytes},
                {"tenant_resident_bytes", actor.tenant_resident_bytes},
                {"updated_unix_ms", actor.updated_unix_ms},
                {"lost_version", actor.lost_version},
                {"resident", std::move(resident)}});
    return;
  }
  if (actor.lost_version > 0) {
    std::cout << "actor " << actor.tenant << "/" << actor.actor_id << " LOST its state: version " << actor.lost_version
              << " was acknowledged, Redis holds "
              << (actor.found ? "version " + std::to_string(actor.version) : std::string("none of it"))
              << "; its calls get DATA_LOSS until `bridgectl actor reset " << actor.tenant << " " << actor.actor_id
              << "`\n";
    return;
  }
  if (!actor.found) {
    std::cout << "actor " << actor.tenant << "/" << actor.actor_id
              << " has no saved state (never called with kept outputs)\n";
    return;
  }
  std::cout << "actor " << actor.tenant << "/" << actor.actor_id << ": version " << actor.version << ", "
            << (actor.worker_id.empty() ? std::string("not active") : "active on " + actor.worker_id) << ", "
            << actor.resident.size() << " resident tensor(s), " << actor.resident_bytes << " bytes (tenant total "
            << actor.tenant_resident_bytes << ")\n";
  std::printf("%-24s %-5s %-16s %12s\n", "TENSOR", "DTYPE", "SHAPE", "BYTES");
  for (const auto& r : actor.resident)
    std::printf("%-24s %-5s %-16s %12llu\n", r.name.c_str(), dtype_name(r.dtype), shape_text(r.shape).c_str(),
                static_cast<unsigned long long>(r.bytes));
}

}  // namespace bridgectl
