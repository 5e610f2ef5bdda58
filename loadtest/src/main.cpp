// bridge-loadtest: drives a fleet with per-tenant streams of jobs and reports throughput and latency.
//
// A stream is closed-loop (N jobs always in flight) or open-loop (a target rate; latency counts from
// the intended send time, so that queueing is not hidden by a sender that waits: no coordinated
// omission). Each stream has its own Client, like a separate tenant's process. Only jobs whose
// (intended) send time falls in the measured window, after the warm-up, count.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>

#include "bridge/client.hpp"
#include "bridge/core/args.hpp"
#include "bridge/core/config_map.hpp"
#include "bridge/core/program.hpp"

namespace {

using namespace bridge;
using Clock = std::chrono::steady_clock;

constexpr const char* kUsage = R"(usage: bridge-loadtest --broker ENDPOINT [--duration S] [--warmup S] [--json FILE] --stream SPEC...

SPEC is comma-separated key=value:
  tenant=NAME            (default: default)
  kernel=NAME            (default: passthrough; sleep, vector_add, saxpy, reduce_sum, softmax, matmul)
  bytes=N                size of each input tensor in bytes (default 16; matmul: an n x n matrix of about N bytes)
  param.NAME=VALUE       a kernel param, e.g. param.ms=5 for sleep
  mode=closed|open       closed: `concurrency` jobs always in flight; open: `rate` jobs per second
  concurrency=N          (closed; default 16)
  rate=R                 (open; default 100)
  priority=N, placement=any|prefer-gpu|require-gpu|cpu-only, timeout_ms=N
Prints one line per stream: jobs sent, OK, errors by code, throughput, latency percentiles.
)";

struct StreamSpec {
  std::string tenant = "default";
  std::string kernel = "passthrough";
  std::size_t bytes = 16;
  std::map<std::string, double> params;
  bool open = false;
  std::uint32_t concurrency = 16;
  double rate = 100;
  int priority = 0;
  Placement placement = Placement::kAny;
  std::uint32_t timeout_ms = 30000;
};

StreamSpec parse_stream(const std::string& text) {
  StreamSpec s;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');) {
    const auto eq = item.find('=');
    if (eq == std::string::npos) throw core::ConfigError("--stream " + text + ": '" + item + "' is not key=value");
    const std::string key = item.substr(0, eq), value = item.substr(eq + 1);
    try {
      if (key == "tenant") s.tenant = value;
      else if (key == "kernel") s.kernel = value;
      else if (key == "bytes") s.bytes = std::stoull(value);
      else if (key.rfind("param.", 0) == 0) s.params[key.substr(6)] = std::stod(value);
      else if (key == "mode" && (value == "open" || value == "closed")) s.open = value == "open";
      else if (key == "concurrency") s.concurrency = static_cast<std::uint32_t>(std::stoul(value));
      else if (key == "rate") s.rate = std::stod(value);
      else if (key == "priority") s.priority = std::stoi(value);
      else if (key == "timeout_ms") s.timeout_ms = static_cast<std::uint32_t>(std::stoul(value));
      else if (key == "placement" && parse_placement(value, s.placement)) {
      } else throw core::ConfigError("--stream " + text + ": unknown key or value '" + item + "'");
    } catch (const std::invalid_argument&) {
      throw core::ConfigError("--stream " + text + ": '" + value + "' is not a number");
    }
  }
  if (s.concurrency == 0 || s.rate <= 0) throw core::ConfigError("--stream " + text + ": concurrency and rate must be positive");
  return s;
}

std::vector<Tensor> make_inputs(const StreamSpec& s) {
  const auto n = static_cast<std::int64_t>(std::max<std::size_t>(1, s.bytes / 4));
  auto vec = [&](float v) {
    Tensor t = Tensor::zeros(DType::kF32, {n});
    for (float& x : t.mutable_values<float>()) x = v;
    return t;
  };
  if (s.kernel == "sleep") return {};
  if (s.kernel == "vector_add" || s.kernel == "saxpy") return {vec(1), vec(2)};
  if (s.kernel == "matmul") {
    const auto side = static_cast<std::int64_t>(std::max(1.0, std::sqrt(static_cast<double>(n))));
    return {Tensor::zeros(DType::kF32, {side, side}), Tensor::zeros(DType::kF32, {side, side})};
  }
  if (s.kernel == "softmax") return {Tensor::zeros(DType::kF32, {1, n})};
  return {vec(1)};
}

// Results of one stream. Written only by its Client's I/O thread while running; read after.
struct StreamStats {
  std::vector<double> latencies_ms;              // OK jobs sent inside the window
  std::map<std::string, std::uint64_t> errors;   // by status code, inside the window
  std::uint64_t sent_in_window = 0;
  std::uint64_t sent = 0;
};

class Stream {
 public:
  Stream(StreamSpec spec, const std::string& broker) : spec_(std::move(spec)), client_(options(broker)) {
    request_.kernel = spec_.kernel;
    request_.tenant = spec_.tenant;
    request_.inputs = make_inputs(spec_);
    for (const auto& [k, v] : spec_.params) request_.params[k] = v;
    request_.priority = spec_.priority;
    request_.placement = spec_.placement;
    request_.timeout = std::chrono::milliseconds(spec_.timeout_ms);
  }

  void run(Clock::time_point window_start, Clock::time_point end) {
    window_start_ = window_start;
    end_ = end;
    if (spec_.open) {
      // Paced by the clock, never by answers: job i is due at start + i / rate.
      const auto start = Clock::now();
      for (std::uint64_t i = 0;; ++i) {
        const auto due = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(i / spec_.rate));
        if (due >= end) break;
        std::this_thread::sleep_until(due);
        send(due);
      }
    } else {
      for (std::uint32_t i = 0; i < spec_.concurrency; ++i) send(Clock::now());
      std::this_thread::sleep_until(end);
    }
    std::unique_lock lock(mutex_);
    drained_.wait_for(lock, std::chrono::milliseconds(spec_.timeout_ms) + std::chrono::seconds(2),
                      [this] { return outstanding_ == 0; });
  }

  const StreamSpec& spec() const { return spec_; }
  const StreamStats& stats() const { return stats_; }

 private:
  static Client::Options options(const std::string& broker) {
    Client::Options o;
    o.broker = broker;
    return o;
  }

  void send(Clock::time_point intended) {
    {
      std::lock_guard lock(mutex_);
      ++outstanding_;
    }
    const bool counted = intended >= window_start_;
    client_.submit(request_, [this, intended, counted](JobResult r) {
      const auto now = Clock::now();
      ++stats_.sent;
      if (counted) {
        ++stats_.sent_in_window;
        if (r.ok())
          stats_.latencies_ms.push_back(std::chrono::duration<double, std::milli>(now - intended).count());
        else
          ++stats_.errors[status_code_name(r.status.code())];
      }
      // Closed loop: the next job goes out as this one comes back, until the end.
      if (!spec_.open && now < end_) send(now);
      std::lock_guard lock(mutex_);
      if (--outstanding_ == 0) drained_.notify_all();
    });
  }

  StreamSpec spec_;
  Client client_;
  JobRequest request_;
  StreamStats stats_;
  Clock::time_point window_start_{};
  Clock::time_point end_{};
  std::mutex mutex_;
  std::condition_variable drained_;
  std::uint64_t outstanding_ = 0;
};

double percentile(std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  const auto i = static_cast<std::size_t>(std::ceil(p / 100.0 * static_cast<double>(sorted.size()))) ;
  return sorted[std::min(sorted.size() - 1, i == 0 ? 0 : i - 1)];
}

}  // namespace

int main(int argc, char** argv) {
  return core::run_program("bridge-loadtest", [&] {
    core::Args args(argc, argv, {"help"});
    if (args.has("help") || !args.has("stream")) {
      std::cout << kUsage;
      return args.has("help") ? 0 : 2;
    }
    args.reject_unknown({"help", "broker", "duration", "warmup", "json", "stream"});
    const std::string broker = args.get("broker", "tcp://127.0.0.1:5555");
    const double duration = std::stod(args.get("duration", "10"));
    const double warmup = std::stod(args.get("warmup", "2"));
    std::vector<std::unique_ptr<Stream>> streams;
    for (const auto& spec : args.all("stream")) streams.push_back(std::make_unique<Stream>(parse_stream(spec), broker));

    const auto start = Clock::now();
    const auto window_start = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(warmup));
    const auto end = window_start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(duration));
    std::vector<std::thread> threads;
    for (auto& s : streams) threads.emplace_back([&, stream = s.get()] { stream->run(window_start, end); });
    for (auto& t : threads) t.join();

    std::ostringstream json;
    json << "{\"duration_s\":" << duration << ",\"warmup_s\":" << warmup << ",\"streams\":[";
    std::printf("%-12s %-6s %-12s %8s %8s %10s %9s %9s %9s %9s  %s\n", "TENANT", "MODE", "KERNEL", "SENT", "OK", "OK/s",
                "p50 ms", "p90 ms", "p99 ms", "max ms", "ERRORS");
    for (std::size_t i = 0; i < streams.size(); ++i) {
      const auto& spec = streams[i]->spec();
      StreamStats stats = streams[i]->stats();
      std::sort(stats.latencies_ms.begin(), stats.latencies_ms.end());
      const double throughput = static_cast<double>(stats.latencies_ms.size()) / duration;
      std::string errors;
      for (const auto& [code, count] : stats.errors) errors += (errors.empty() ? "" : " ") + code + ":" + std::to_string(count);
      const double p50 = percentile(stats.latencies_ms, 50), p90 = percentile(stats.latencies_ms, 90),
                   p99 = percentile(stats.latencies_ms, 99), p999 = percentile(stats.latencies_ms, 99.9),
                   max = stats.latencies_ms.empty() ? 0 : stats.latencies_ms.back();
      std::printf("%-12s %-6s %-12s %8llu %8zu %10.1f %9.3f %9.3f %9.3f %9.3f  %s\n", spec.tenant.c_str(),
                  spec.open ? "open" : "closed", spec.kernel.c_str(), static_cast<unsigned long long>(stats.sent_in_window),
                  stats.latencies_ms.size(), throughput, p50, p90, p99, max, errors.empty() ? "-" : errors.c_str());
      json << (i ? "," : "") << "{\"tenant\":\"" << spec.tenant << "\",\"kernel\":\"" << spec.kernel << "\",\"mode\":\""
           << (spec.open ? "open" : "closed") << "\",\"rate\":" << (spec.open ? spec.rate : 0)
           << ",\"concurrency\":" << (spec.open ? 0 : spec.concurrency) << ",\"sent\":" << stats.sent_in_window
           << ",\"ok\":" << stats.latencies_ms.size() << ",\"ok_per_s\":" << throughput << ",\"p50_ms\":" << p50
           << ",\"p90_ms\":" << p90 << ",\"p99_ms\":" << p99 << ",\"p999_ms\":" << p999 << ",\"max_ms\":" << max
           << ",\"errors\":{";
      bool first = true;
      for (const auto& [code, count] : stats.errors) {
        json << (first ? "" : ",") << "\"" << code << "\":" << count;
        first = false;
      }
      json << "}}";
    }
    json << "]}\n";
    if (args.has("json")) std::ofstream(args.get("json")) << json.str();
    return 0;
  });
}
