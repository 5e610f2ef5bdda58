// bridgectl: submit jobs to a GpuBridge fleet and look at it.
#include <poll.h>

#include <cmath>
#include <cstdio>
#include <future>
#include <iostream>
#include <map>
#include <sstream>
#include <thread>

#include "bridge/client.hpp"
#include "bridge/core/args.hpp"
#include "bridge/core/config_map.hpp"
#include "bridge/core/curve.hpp"
#include "bridge/core/logging.hpp"
#include "bridge/core/program.hpp"

namespace {

using bridge::core::json_escape;

using namespace bridge;

constexpr const char* kUsage = R"(usage: bridgectl [--broker ENDPOINT] [--key-file FILE] [--broker-key-file FILE] [--tenant NAME]
                 [--timeout MS] [--retries N] [--json] COMMAND ...

commands:
  submit KERNEL [--input [NAME=]V1,V2,...[:SHAPE]]... [--param NAME=VALUE]... [--dtype f32|f64|i32|i64|u8]
                [--placement any|prefer-gpu|require-gpu|cpu-only] [--priority N]
      Runs one job and prints its result. SHAPE is like 2x3 (default: a vector of the values).
      Inputs are positional, in the order given. Exit status 0 if the job succeeded, 1 if not.
      Ctrl-C cancels the job (it is stopped on its worker) and prints its CANCELLED answer.
      --retries N: re-send up to N-1 times when refused for a passing reason (quota, queue full).
  status
      Prints the workers the broker knows: id, device, kernels, slots, in flight, last heartbeat.
  quota show [TENANT]
      Prints each tenant's limits (tenants.yaml) and its live usage across the fleet (Redis).
  top [--interval MS] [--once]
      A live view, refreshed every interval (1000 ms): workers (slots, in flight, jobs/s, device
      readings), tenants (jobs and bytes in flight against their limits), queue, throughput.
      --once samples twice, an interval apart, prints one screen and exits.
  actor show [TENANT] ID
      Prints an actor's state version, the worker holding its activation, and its resident tensors.
  keygen NAME
      Writes a new CURVE key pair: NAME.key (the secret, mode 0600; give it only to the program
      that uses it) and NAME.pub (list it in tenants.yaml under the tenant, or in workers.yaml).

keys (docs/security.md): --key-file is this client's NAME.key, --broker-key-file the broker's .pub
(or $GPUBRIDGE_KEY_FILE, $GPUBRIDGE_BROKER_KEY_FILE). The tenant is the one the key is listed
under; --tenant may only name it (an operator key may name any tenant in quota and actor show).
defaults: --broker tcp://127.0.0.1:5555 (or $BRIDGE_BROKER), --tenant: the key's, --timeout 30000
exit status: 0 done, 1 the broker or the job answered an error, 2 a usage or configuration error
)";

constexpr std::size_t kMaxPrintedValues = 16;


std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> parts;
  std::stringstream in(s);
  for (std::string part; std::getline(in, part, sep);) parts.push_back(part);
  return parts;
}

// One value of a tensor as text (JSON-compatible numbers; NaN/Inf as strings).
std::string value_at(const Tensor& t, std::size_t i) {
  auto number = [](double v) {
    if (!std::isfinite(v)) return std::string("\"") + (std::isnan(v) ? "nan" : v > 0 ? "inf" : "-inf") + "\"";
    std::ostringstream o;
    o.precision(9);
    o << v;
    return o.str();
  };
  switch (t.dtype()) {
    case DType::kF32: return number(t.values<float>()[i]);
    case DType::kF64: return number(t.values<double>()[i]);
    case DType::kI32: return std::to_string(t.values<std::int32_t>()[i]);
    case DType::kI64: return std::to_string(t.values<std::int64_t>()[i]);
    case DType::kU8: return std::to_string(t.values<std::uint8_t>()[i]);
  }
  return "?";
}

std::string shape_text(const Shape& shape) {
  std::string out = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) out += (i ? "," : "") + std::to_string(shape[i]);
  return out + "]";
}

Tensor parse_input(const std::string& spec, DType dtype) {
  std::string name, rest = spec;
  if (auto eq = rest.find('='); eq != std::string::npos) {
    name = rest.substr(0, eq);
    rest = rest.substr(eq + 1);
  }
  std::string shape_spec;
  if (auto colon = rest.find(':'); colon != std::string::npos) {
    shape_spec = rest.substr(colon + 1);
    rest = rest.substr(0, colon);
  }
  std::vector<double> values;
  for (const auto& v : split(rest, ',')) {
    if (v.empty()) continue;
    try {
      std::size_t used = 0;
      values.push_back(std::stod(v, &used));
      if (used != v.size()) throw std::invalid_argument(v);
    } catch (const std::exception&) {
      throw core::ConfigError("--input " + spec + ": '" + v + "' is not a number");
    }
  }
  Shape shape{static_cast<std::int64_t>(values.size())};
  if (!shape_spec.empty()) {
    shape.clear();
    for (const auto& d : split(shape_spec, 'x')) {
      try {
        shape.push_back(std::stoll(d));
      } catch (const std::exception&) {
        throw core::ConfigError("--input " + spec + ": shape '" + shape_spec + "' must look like 2x3");
      }
    }
  }
  Tensor t;
  try {
    t = Tensor::zeros(dtype, shape, name);
  } catch (const std::exception& e) {
    throw core::ConfigError("--input " + spec + ": " + e.what());
  }
  if (static_cast<std::size_t>(t.element_count()) != values.size())
    throw core::ConfigError("--input " + spec + ": shape " + shape_text(shape) + " needs " +
                            std::to_string(t.element_count()) + " values, got " + std::to_string(values.size()));
  for (std::size_t i = 0; i < values.size(); ++i) {
    switch (dtype) {
      case DType::kF32: t.mutable_values<float>()[i] = static_cast<float>(values[i]); break;
      case DType::kF64: t.mutable_values<double>()[i] = values[i]; break;
      case DType::kI32: t.mutable_values<std::int32_t>()[i] = static_cast<std::int32_t>(values[i]); break;
      case DType::kI64: t.mutable_values<std::int64_t>()[i] = static_cast<std::int64_t>(values[i]); break;
      case DType::kU8: t.mutable_values<std::uint8_t>()[i] = static_cast<std::uint8_t>(values[i]); break;
    }
  }
  return t;
}

void print_result(const JobResult& r, bool json) {
  const auto us = [](std::chrono::microseconds d) { return static_cast<long long>(d.count()); };
  if (json) {
    std::cout << "{\"job_id\":" << r.job_id << ",\"status\":\"" << status_code_name(r.status.code())
              << "\",\"message\":\"" << json_escape(r.status.message()) << "\",\"worker_id\":\"" << json_escape(r.worker_id)
              << "\",\"device_kind\":\"" << device_kind_name(r.device_kind) << "\",\"device_name\":\""
              << json_escape(r.device_name) << "\",\"fallback_reason\":\"" << json_escape(r.fallback_reason)
              << "\",\"attempts\":" << r.attempts << ",\"retry_after_ms\":" << r.retry_after.count()
              << ",\"timings_us\":{\"queued\":" << us(r.timings.queued) << ",\"transfer\":" << us(r.timings.transfer)
              << ",\"compute\":" << us(r.timings.compute) << ",\"total\":" << us(r.timings.total) << "},\"outputs\":[";
    for (std::size_t o = 0; o < r.outputs.size(); ++o) {
      const Tensor& t = r.outputs[o];
      std::cout << (o ? "," : "") << "{\"name\":\"" << json_escape(t.name()) << "\",\"dtype\":\"" << dtype_name(t.dtype())
                << "\",\"shape\":" << shape_text(t.shape()) << ",\"values\":[";
      for (std::size_t i = 0; i < static_cast<std::size_t>(t.element_count()); ++i) std::cout << (i ? "," : "") << value_at(t, i);
      std::cout << "]}";
    }
    std::cout << "]}\n";
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
    std::cout << "  " << (t.name().empty() ? "out" : t.name()) << " " << dtype_name(t.dtype()) << shape_text(t.shape()) << " =";
    const auto n = static_cast<std::size_t>(t.element_count());
    for (std::size_t i = 0; i < std::min(n, kMaxPrintedValues); ++i) std::cout << (i ? ", " : " ") << value_at(t, i);
    if (n > kMaxPrintedValues) std::cout << ", ... (" << n << " values)";
    std::cout << "\n";
  }
}

int submit(Client& client, const core::Args& args, bool json) {
  if (args.positional().size() < 2) throw core::ConfigError("submit needs a kernel name (see --help)");
  JobRequest job;
  job.kernel = args.positional()[1];
  DType dtype = DType::kF32;
  if (args.has("dtype") && !parse_dtype(args.get("dtype"), dtype))
    throw core::ConfigError("--dtype " + args.get("dtype") + ": use f32, f64, i32, i64 or u8");
  for (const auto& spec : args.all("input")) job.inputs.push_back(parse_input(spec, dtype));
  for (const auto& spec : args.all("param")) {
    const auto eq = spec.find('=');
    if (eq == std::string::npos) throw core::ConfigError("--param " + spec + ": use NAME=VALUE");
    try {
      job.params[spec.substr(0, eq)] = std::stod(spec.substr(eq + 1));
    } catch (const std::exception&) {
      throw core::ConfigError("--param " + spec + ": the value is not a number");
    }
  }
  if (args.has("placement") && !parse_placement(args.get("placement"), job.placement))
    throw core::ConfigError("--placement " + args.get("placement") + ": use any, prefer-gpu, require-gpu or cpu-only");
  if (args.has("priority")) {
    try {
      job.priority = std::stoi(args.get("priority"));
    } catch (const std::exception&) {
      throw core::ConfigError("--priority " + args.get("priority") + ": use an integer from -128 to 127");
    }
  }
  // Ctrl-C (or SIGTERM) cancels the job: the broker stops it on its worker and frees the slot.
  core::Notifier interrupted;
  core::stop_on_signals(interrupted);
  std::promise<JobResult> done;
  std::future<JobResult> answer = done.get_future();
  const std::uint64_t id = client.submit(std::move(job), [&done](JobResult r) { done.set_value(std::move(r)); });
  bool cancelled = false;
  while (answer.wait_for(std::chrono::milliseconds(0)) != std::future_status::ready) {
    pollfd signal{interrupted.fd(), POLLIN, 0};
    if (!cancelled && ::poll(&signal, 1, 20) == 1) {
      interrupted.drain();
      client.cancel(id);
      cancelled = true;
    } else if (cancelled) {
      answer.wait_for(std::chrono::milliseconds(20));
    }
  }
  core::clear_stop_signals();
  JobResult result = answer.get();
  print_result(result, json);
  return result.ok() ? 0 : 1;
}

std::string limit_text(double v) {
  if (v <= 0) return "-";
  std::ostringstream o;
  o << v;
  return o.str();
}

int quota_show(Client& client, const core::Args& args, bool json) {
  if (args.positional().size() < 2 || args.positional()[1] != "show")
    throw core::ConfigError("usage: bridgectl quota show [TENANT]");
  const std::string tenant = args.positional().size() > 2 ? args.positional()[2] : "";
  QuotaReport report;
  Status s = client.quotas(tenant, report);
  if (!s.is_ok()) {
    std::cerr << "bridgectl: " << s.to_string() << "\n";
    return 1;
  }
  if (json) {
    std::cout << "{\"tenants_file\":\"" << json_escape(report.tenants_file) << "\",\"loaded_at_unix_ms\":"
              << report.loaded_at_unix_ms << ",\"tenants\":[";
    for (std::size_t i = 0; i < report.tenants.size(); ++i) {
      const auto& t = report.tenants[i];
      std::cout << (i ? "," : "") << "{\"tenant\":\"" << json_escape(t.tenant) << "\",\"max_inflight_jobs\":"
                << t.max_inflight_jobs << ",\"max_inflight_bytes\":" << t.max_inflight_bytes << ",\"rate\":" << t.rate
                << ",\"burst\":" << t.burst << ",\"weight\":" << t.weight << ",\"min_priority\":" << t.min_priority
                << ",\"max_priority\":" << t.max_priority << ",\"inflight_jobs\":" << t.inflight_jobs
                << ",\"inflight_bytes\":" << t.inflight_bytes << ",\"rate_tokens\":" << t.rate_tokens << ",\"kernels\":[";
      for (std::size_t k = 0; k < t.kernels.size(); ++k) std::cout << (k ? "," : "") << "\"" << json_escape(t.kernels[k]) << "\"";
      std::cout << "]}";
    }
    std::cout << "]}\n";
    return 0;
  }
  std::cout << "quotas from " << report.tenants_file << "; usage fleet-wide (- = no limit, ? = Redis unreachable)\n";
  std::printf("%-20s %13s %23s %14s %7s %10s  %s\n", "TENANT", "JOBS", "BYTES", "RATE/s (BURST)", "WEIGHT", "PRIORITY",
              "KERNELS");
  for (const auto& t : report.tenants) {
    auto used = [](std::int64_t v) { return v < 0 ? std::string("?") : std::to_string(v); };
    std::string kernels;
    for (const auto& k : t.kernels) kernels += (kernels.empty() ? "" : ",") + k;
    const std::string jobs = used(t.inflight_jobs) + "/" + std::to_string(t.max_inflight_jobs);
    const std::string bytes = used(t.inflight_bytes) + "/" + std::to_string(t.max_inflight_bytes);
    const std::string rate = limit_text(t.rate) + (t.rate > 0 ? " (" + limit_text(t.burst) + ")" : "");
    const std::string priority = std::to_string(t.min_priority) + ".." + std::to_string(t.max_priority);
    std::printf("%-20s %13s %23s %14s %7s %10s  %s\n", t.tenant.c_str(), jobs.c_str(), bytes.c_str(), rate.c_str(),
                limit_text(t.weight).c_str(), priority.c_str(), kernels.empty() ? "all" : kernels.c_str());
  }
  return 0;
}

int actor_show(Client& client, const core::Args& args, bool json) {
  const auto& words = args.positional();
  if ((words.size() != 3 && words.size() != 4) || words[1] != "show")
    throw core::ConfigError("usage: bridgectl actor show [TENANT] ID");
  ActorInfo actor;
  Status s = words.size() == 4 ? client.actor_info(words[2], words[3], actor) : client.actor_info("", words[2], actor);
  if (!s.is_ok()) {
    std::cerr << "bridgectl: " << s.to_string() << "\n";
    return 1;
  }
  auto shape_text = [](const Shape& shape) {
    std::string out;
    for (std::size_t i = 0; i < shape.size(); ++i) out += (i ? "x" : "") + std::to_string(shape[i]);
    return out.empty() ? std::string("scalar") : out;
  };
  if (json) {
    std::cout << "{\"tenant\":\"" << json_escape(actor.tenant) << "\",\"actor_id\":\"" << json_escape(actor.actor_id)
              << "\",\"found\":" << (actor.found ? "true" : "false") << ",\"version\":" << actor.version
              << ",\"worker_id\":\"" << json_escape(actor.worker_id) << "\",\"resident_bytes\":" << actor.resident_bytes
              << ",\"tenant_resident_bytes\":" << actor.tenant_resident_bytes << ",\"updated_unix_ms\":"
              << actor.updated_unix_ms << ",\"resident\":[";
    for (std::size_t i = 0; i < actor.resident.size(); ++i) {
      const auto& r = actor.resident[i];
      std::cout << (i ? "," : "") << "{\"name\":\"" << json_escape(r.name) << "\",\"dtype\":\"" << dtype_name(r.dtype)
                << "\",\"shape\":\"" << shape_text(r.shape) << "\",\"bytes\":" << r.bytes << "}";
    }
    std::cout << "]}\n";
    return 0;
  }
  if (!actor.found) {
    std::cout << "actor " << actor.tenant << "/" << actor.actor_id << " has no saved state (never called with kept outputs)\n";
    return 0;
  }
  std::cout << "actor " << actor.tenant << "/" << actor.actor_id << ": version " << actor.version << ", "
            << (actor.worker_id.empty() ? std::string("not active") : "active on " + actor.worker_id) << ", "
            << actor.resident.size() << " resident tensor(s), " << actor.resident_bytes << " bytes (tenant total "
            << actor.tenant_resident_bytes << ")\n";
  std::printf("%-24s %-5s %-16s %12s\n", "TENSOR", "DTYPE", "SHAPE", "BYTES");
  for (const auto& r : actor.resident)
    std::printf("%-24s %-5s %-16s %12llu\n", r.name.c_str(), dtype_name(r.dtype), shape_text(r.shape).c_str(),
                static_cast<unsigned long long>(r.bytes));
  return 0;
}

std::string reading(double v, const char* unit, int precision = 0) {
  if (v < 0) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.*f%s", precision, v, unit);
  return buf;
}

// One screen of `bridgectl top`: the broker's view, throughput from the completed counts' change.
void top_screen(const FleetStatus& fleet, const QuotaReport& quotas, const std::map<std::string, std::uint64_t>& before,
                double seconds) {
  std::uint64_t done = 0, done_before = 0;
  for (const auto& w : fleet.workers) {
    done += w.completed;
    auto it = before.find(w.id);
    done_before += it == before.end() ? w.completed : it->second;
  }
  const double rate = seconds > 0 ? static_cast<double>(done - std::min(done, done_before)) / seconds : 0;
  std::printf("broker %s   redis %s   workers %zu   queued %u   in flight %u   %.1f jobs/s\n\n", fleet.broker_id.c_str(),
              fleet.redis_connected ? "up" : "DOWN", fleet.workers.size(), fleet.queued_jobs, fleet.inflight_jobs, rate);
  std::printf("%-28s %-6s %9s %9s %8s %6s %6s %7s %10s\n", "WORKER", "DEVICE", "INFLIGHT", "COMPLETED", "JOBS/s",
              "UTIL", "TEMP", "POWER", "FREE MEM");
  for (const auto& w : fleet.workers) {
    auto it = before.find(w.id);
    const double wrate = seconds > 0 && it != before.end() ? static_cast<double>(w.completed - std::min(w.completed, it->second)) / seconds : 0;
    const std::string inflight = std::to_string(w.inflight) + "/" + std::to_string(w.slots);
    const std::string mem = w.metrics.free_memory_bytes < 0 ? "-" : std::to_string(w.metrics.free_memory_bytes >> 20) + " MiB";
    std::printf("%-28.28s %-6s %9s %9llu %8.1f %6s %6s %7s %10s%s\n", w.id.c_str(), device_kind_name(w.device.kind),
                inflight.c_str(), static_cast<unsigned long long>(w.completed), wrate,
                reading(w.metrics.utilization_percent, "%").c_str(), reading(w.metrics.temperature_c, "C").c_str(),
                reading(w.metrics.power_watts, "W").c_str(), mem.c_str(), w.metrics.gpu_disabled ? "  GPU DISABLED" : "");
  }
  std::printf("\n%-20s %15s %25s %12s\n", "TENANT", "JOBS", "BYTES", "RATE TOKENS");
  for (const auto& t : quotas.tenants) {
    auto used = [](std::int64_t v) { return v < 0 ? std::string("?") : std::to_string(v); };
    const std::string jobs = used(t.inflight_jobs) + "/" + std::to_string(t.max_inflight_jobs);
    const std::string bytes = used(t.inflight_bytes) + "/" + std::to_string(t.max_inflight_bytes);
    std::printf("%-20s %15s %25s %12s\n", t.tenant.c_str(), jobs.c_str(), bytes.c_str(),
                t.rate > 0 ? reading(t.rate_tokens, "", 1).c_str() : "-");
  }
  std::fflush(stdout);
}

int top(Client& client, const core::Args& args) {
  const auto interval = std::chrono::milliseconds(args.get_uint("interval", 1000));
  const bool once = args.has("once");
  std::map<std::string, std::uint64_t> before;
  auto last = std::chrono::steady_clock::now();
  for (bool first = true;; first = false) {
    FleetStatus fleet;
    QuotaReport quotas;
    Status s = client.status(fleet);
    if (s.is_ok()) s = client.quotas("", quotas);
    if (!s.is_ok()) {
      std::cerr << "bridgectl: " << s.to_string() << "\n";
      return 1;
    }
    const auto now = std::chrono::steady_clock::now();
    // --once: a first sample, then one screen an interval later, so that it has rates to show.
    if (!(once && first)) {
      if (!once) std::printf("\033[H\033[2J");  // home and clear: redraw in place
      top_screen(fleet, quotas, before, first ? 0 : std::chrono::duration<double>(now - last).count());
      if (once) return 0;
    }
    before.clear();
    for (const auto& w : fleet.workers) before[w.id] = w.completed;
    last = now;
    std::this_thread::sleep_for(interval);
  }
}

int status(Client& client, bool json) {
  FleetStatus fleet;
  Status s = client.status(fleet);
  if (!s.is_ok()) {
    std::cerr << "bridgectl: " << s.to_string() << "\n";
    return 1;
  }
  if (json) {
    std::cout << "{\"broker_id\":\"" << json_escape(fleet.broker_id) << "\",\"queued_jobs\":" << fleet.queued_jobs
              << ",\"inflight_jobs\":" << fleet.inflight_jobs << ",\"redis_connected\":"
              << (fleet.redis_connected ? "true" : "false") << ",\"workers\":[";
    for (std::size_t i = 0; i < fleet.workers.size(); ++i) {
      const auto& w = fleet.workers[i];
      std::cout << (i ? "," : "") << "{\"id\":\"" << json_escape(w.id) << "\",\"device_kind\":\""
                << device_kind_name(w.device.kind) << "\",\"device_name\":\"" << json_escape(w.device.name)
                << "\",\"slots\":" << w.slots << ",\"inflight\":" << w.inflight << ",\"completed\":" << w.completed
                << ",\"last_heartbeat_ms_ago\":" << w.since_heartbeat.count() << ",\"kernels\":[";
      for (std::size_t k = 0; k < w.kernels.size(); ++k) std::cout << (k ? "," : "") << "\"" << json_escape(w.kernels[k]) << "\"";
      std::cout << "]}";
    }
    std::cout << "]}\n";
    return 0;
  }
  std::cout << "broker " << fleet.broker_id << ": " << fleet.workers.size() << " worker(s), " << fleet.queued_jobs
            << " queued, " << fleet.inflight_jobs << " in flight, redis " << (fleet.redis_connected ? "connected" : "DOWN")
            << "\n";
  std::printf("%-32s %-6s %-28s %5s %8s %9s %10s  %s\n", "WORKER", "DEVICE", "DEVICE NAME", "SLOTS", "INFLIGHT",
              "COMPLETED", "HEARTBEAT", "KERNELS");
  for (const auto& w : fleet.workers) {
    std::string kernels;
    for (const auto& k : w.kernels) kernels += (kernels.empty() ? "" : ",") + k;
    std::printf("%-32s %-6s %-28.28s %5u %8u %9llu %7lld ms  %s\n", w.id.c_str(), device_kind_name(w.device.kind),
                w.device.name.c_str(), w.slots, w.inflight, static_cast<unsigned long long>(w.completed),
                static_cast<long long>(w.since_heartbeat.count()), kernels.c_str());
  }
  return 0;
}

int keygen(const core::Args& args) {
  if (args.positional().size() != 2) throw core::ConfigError("usage: bridgectl keygen NAME (writes NAME.key and NAME.pub)");
  const std::string& name = args.positional()[1];
  const core::CurveKeys keys = core::write_key_files(name);
  std::cout << "wrote " << name << ".key (secret, mode 0600) and " << name << ".pub\npublic key: " << keys.public_key
            << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    core::Args args(argc, argv, {"help", "json", "once"});
    if (args.has("help") || args.positional().empty()) {
      std::cout << kUsage;
      return args.has("help") ? 0 : 2;
    }
    args.reject_unknown({"help", "json", "once", "interval", "broker", "tenant", "timeout", "input", "param", "dtype", "placement", "priority",
                         "retries", "key-file", "broker-key-file"});
    if (args.positional()[0] == "keygen") return keygen(args);
    Client::Options options;
    options.key_file = args.get("key-file", "");
    options.broker_key_file = args.get("broker-key-file", "");
    const char* env_broker = std::getenv("BRIDGE_BROKER");
    options.broker = args.get("broker", env_broker ? env_broker : options.broker);
    options.tenant = args.get("tenant", options.tenant);
    if (args.has("timeout")) options.timeout = std::chrono::milliseconds(args.get_uint("timeout", 30000));
    options.retry.max_attempts = static_cast<int>(std::max<std::uint32_t>(1, args.get_uint("retries", 1)));
    Client client(options);
    const std::string& command = args.positional()[0];
    const bool json = args.has("json");
    if (command == "submit") return submit(client, args, json);
    if (command == "status") return status(client, json);
    if (command == "quota") return quota_show(client, args, json);
    if (command == "actor") return actor_show(client, args, json);
    if (command == "top") return top(client, args);
    throw core::ConfigError("unknown command '" + command + "' (see --help)");
  } catch (const core::ConfigError& e) {
    std::cerr << "bridgectl: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "bridgectl: " << e.what() << "\n";
    return 2;
  }
}
