// bridgectl top: the broker's view, redrawn in place; throughput from the change in completed counts.
#include <cstdio>
#include <iostream>
#include <map>
#include <thread>

#include "commands.hpp"
#include "reports.hpp"

namespace bridgectl {
namespace {

using namespace bridge;

std::string reading(double v, const char* unit, int precision = 0) {
  if (v < 0) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.*f%s", precision, v, unit);
  return buf;
}

void top_screen(const FleetStatus& fleet, const QuotaReport& quotas, const std::map<std::string, std::uint64_t>& before,
                double seconds) {
  std::uint64_t done = 0, done_before = 0;
  for (const auto& w : fleet.workers) {
    done += w.completed;
    auto it = before.find(w.id);
    done_before += it == before.end() ? w.completed : it->second;
  }
  const double rate = seconds > 0 ? static_cast<double>(done - std::min(done, done_before)) / seconds : 0;
  std::printf("broker %s   redis %s   workers %zu   queued %u   in flight %u   %.1f jobs/s\n\n",
              fleet.broker_id.c_str(), fleet.redis_connected ? "up" : "DOWN", fleet.workers.size(), fleet.queued_jobs,
              fleet.inflight_jobs, rate);
  std::printf("%-28s %-6s %9s %9s %8s %6s %6s %7s %10s\n", "WORKER", "DEVICE", "INFLIGHT", "COMPLETED", "JOBS/s",
              "UTIL", "TEMP", "POWER", "FREE MEM");
  for (const auto& w : fleet.workers) {
    auto it = before.find(w.id);
    const double wrate = seconds > 0 && it != before.end()
                             ? static_cast<double>(w.completed - std::min(w.completed, it->second)) / seconds
                             : 0;
    // Jobs in flight against slots, and the prefetch allowance where there is one: "6/4+4".
    const std::string inflight = std::to_string(w.inflight) + "/" + std::to_string(w.slots) +
                                 (w.prefetch > 0 ? "+" + std::to_string(w.prefetch) : "");
    const std::string mem =
        w.metrics.free_memory_bytes < 0 ? "-" : std::to_string(w.metrics.free_memory_bytes >> 20) + " MiB";
    std::printf("%-28.28s %-6s %9s %9llu %8.1f %6s %6s %7s %10s%s\n", w.id.c_str(), device_kind_name(w.device.kind),
                inflight.c_str(), static_cast<unsigned long long>(w.completed), wrate,
                reading(w.metrics.utilization_percent, "%").c_str(), reading(w.metrics.temperature_c, "C").c_str(),
                reading(w.metrics.power_watts, "W").c_str(), mem.c_str(),
                w.metrics.gpu_disabled ? "  GPU DISABLED" : "");
  }
  std::printf("\n%-20s %15s %25s %12s\n", "TENANT", "JOBS", "BYTES", "RATE TOKENS");
  for (const auto& t : quotas.tenants) {
    const std::string jobs = usage_of(t.inflight_jobs, t.max_inflight_jobs);
    const std::string bytes = usage_of(t.inflight_bytes, t.max_inflight_bytes);
    std::printf("%-20s %15s %25s %12s\n", t.tenant.c_str(), jobs.c_str(), bytes.c_str(),
                t.rate > 0 ? reading(t.rate_tokens, "", 1).c_str() : "-");
  }
  std::fflush(stdout);
}

}  // namespace

int top(Client& client, std::chrono::milliseconds interval, bool once) {
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

}  // namespace bridgectl
