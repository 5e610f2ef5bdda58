#include "reports.hpp"

#include <pybind11/stl.h>

#include "arrays.hpp"
#include "bridge/job.hpp"

namespace py = pybind11;

namespace gpubridge {
namespace {

// -1 is the C++ API's "could not be read"; Python says None.
py::object known(double value) { return value < 0 ? py::none() : py::object(py::float_(value)); }
py::object known(std::int64_t value) { return value < 0 ? py::none() : py::object(py::int_(value)); }

py::dict to_python(const bridge::WorkerInfo& w) {
  py::dict device;
  device["kind"] = bridge::device_kind_name(w.device.kind);
  device["name"] = w.device.name;
  device["total_memory_bytes"] = w.device.total_memory_bytes;
  device["compute_capability"] =
      w.device.compute_capability_major < 0
          ? py::object(py::none())
          : py::object(py::make_tuple(w.device.compute_capability_major, w.device.compute_capability_minor));
  device["multiprocessors"] = known(static_cast<std::int64_t>(w.device.multiprocessors));
  py::dict metrics;
  metrics["free_memory_bytes"] = known(w.metrics.free_memory_bytes);
  metrics["utilization_percent"] = known(w.metrics.utilization_percent);
  metrics["temperature_c"] = known(w.metrics.temperature_c);
  metrics["power_watts"] = known(w.metrics.power_watts);
  metrics["pool_bytes_in_use"] = known(w.metrics.pool_bytes_in_use);
  metrics["pool_bytes_cached"] = known(w.metrics.pool_bytes_cached);
  metrics["pool_hits"] = w.metrics.pool_hits;
  metrics["pool_misses"] = w.metrics.pool_misses;
  metrics["gpu_disabled"] = w.metrics.gpu_disabled;
  py::dict out;
  out["id"] = w.id;
  out["device"] = device;
  out["kernels"] = w.kernels;
  out["slots"] = w.slots;
  out["prefetch"] = w.prefetch;
  out["inflight"] = w.inflight;
  out["since_heartbeat_ms"] = w.since_heartbeat.count();
  out["completed"] = w.completed;
  out["metrics"] = metrics;
  return out;
}

py::dict to_python(const bridge::TenantQuotaInfo& q) {
  py::dict out;
  out["tenant"] = q.tenant;
  out["max_inflight_jobs"] = q.max_inflight_jobs;
  out["max_inflight_bytes"] = q.max_inflight_bytes;
  out["rate"] = q.rate;
  out["burst"] = q.burst;
  out["weight"] = q.weight;
  out["min_priority"] = q.min_priority;
  out["max_priority"] = q.max_priority;
  out["kernels"] = q.kernels;
  out["max_resident_bytes"] = q.max_resident_bytes;
  out["max_job_ms"] = q.max_job_ms;
  out["inflight_jobs"] = known(q.inflight_jobs);
  out["inflight_bytes"] = known(q.inflight_bytes);
  out["rate_tokens"] = known(q.rate_tokens);
  return out;
}

}  // namespace

py::dict to_python(const bridge::FleetStatus& status) {
  py::list workers;
  for (const auto& w : status.workers) workers.append(to_python(w));
  py::dict out;
  out["broker_id"] = status.broker_id;
  out["workers"] = workers;
  out["queued_jobs"] = status.queued_jobs;
  out["inflight_jobs"] = status.inflight_jobs;
  out["redis_connected"] = status.redis_connected;
  out["default_timeout_ms"] = status.default_timeout_ms;
  return out;
}

py::dict to_python(const bridge::QuotaReport& report) {
  py::list tenants;
  for (const auto& q : report.tenants) tenants.append(to_python(q));
  py::dict out;
  out["tenants"] = tenants;
  out["tenants_file"] = report.tenants_file;
  out["loaded_at_unix_ms"] = report.loaded_at_unix_ms;
  return out;
}

py::dict to_python(const bridge::ActorInfo& actor) {
  py::list resident;
  for (const auto& r : actor.resident) {
    py::dict t;
    t["name"] = r.name;
    t["dtype"] = numpy_name(r.dtype);
    t["shape"] = py::tuple(py::cast(r.shape));
    t["bytes"] = r.bytes;
    resident.append(t);
  }
  py::dict out;
  out["tenant"] = actor.tenant;
  out["actor_id"] = actor.actor_id;
  out["found"] = actor.found;
  out["version"] = actor.version;
  out["worker_id"] = actor.worker_id.empty() ? py::object(py::none()) : py::object(py::str(actor.worker_id));
  out["resident"] = resident;
  out["resident_bytes"] = actor.resident_bytes;
  out["tenant_resident_bytes"] = actor.tenant_resident_bytes;
  out["updated_unix_ms"] = actor.updated_unix_ms;
  out["lost_version"] = actor.lost_version;
  return out;
}

}  // namespace gpubridge
