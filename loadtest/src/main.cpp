// bridge-loadtest: drives a fleet with streams of jobs (per tenant, kernel, size, mode) and reports
// throughput and latency: overall, per stream, per tenant and per kernel, with a progress line
// while it runs, and JSON/CSV files for scripts/plot-loadtest.
//
// A stream is closed-loop (N jobs always in flight) or open-loop (a target rate; latency counts from
// the intended send time, so that queueing is not hidden by a sender that waits: no coordinated
// omission). Each stream has its own Client, like a separate tenant's process. Only jobs whose
// (intended) send time falls in the measured window, after the warm-up, count. Latencies go into
// log-linear histograms (histogram.hpp).
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

#include <nlohmann/json.hpp>

#include "bridge/core/program.hpp"
#include "bridge/actor.hpp"
#include "bridge/core/cli.hpp"
#include "bridge/core/config_map.hpp"
#include "bridge/core/curve.hpp"
#include "histogram.hpp"
#include "scenario.hpp"

namespace {

using namespace bridge;
using namespace bridge::loadtest;
using Clock = std::chrono::steady_clock;

constexpr const char* kAbout = "Runs streams of jobs against a GpuBridge fleet and reports throughput and latency.";

constexpr const char* kFooter = R"(
--keys-dir (or $GPUBRIDGE_KEYS_DIR): each stream's tenant T connects with DIR/T.key, and the broker's
key is DIR/broker.pub (docs/security.md); without it, no CURVE (a broker with security: none).
Streams come from a scenario file (loadtest/scenarios/*.yaml) and/or --stream flags. --duration and
--warmup override the scenario's. SPEC is comma-separated key=value:
  name=NAME              (default: TENANT/KERNEL)
  tenant=NAME            (default: default)
  kernel=NAME            (default: passthrough; sleep, vector_add, saxpy, reduce_sum, softmax, matmul, ...)
  bytes=N                size of each input tensor in bytes (default 16; matmul: an n x n matrix of about N bytes)
  param.NAME=VALUE       a kernel param, e.g. param.ms=5 for sleep
  mode=closed|open       closed: `concurrency` jobs always in flight; open: `rate` jobs per second
  concurrency=N          (closed; default 16)
  rate=R                 (open; default 100)
  actors=N               calls on N actors, each holding input 0 resident (sent once)
  priority=N, placement=any|prefer-gpu|require-gpu|cpu-only, timeout_ms=N
Prints a progress line every second (unless --quiet), then a table: per stream, per tenant, per kernel
and in all: jobs sent, OK, throughput, latency p50/p90/p99/p99.9/max, errors by code.
)";

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
  if (s.kernel == "resize" || s.kernel == "blur" || s.kernel == "normalize") {
    const auto side = static_cast<std::int64_t>(std::max(1.0, std::sqrt(static_cast<double>(n) / 3)));
    return {Tensor::zeros(DType::kF32, {side, side, 3})};
  }
  return {vec(1)};
}

// Per second of the measured window: for latency over time.
struct Second {
  std::uint64_t ok = 0, errors = 0;
  LatencyHistogram latency;
};

// Written only by the stream's Client I/O thread while running (the atomics are also read by the
// progress line); read by the main thread after.
struct StreamStats {
  LatencyHistogram latency;                      // OK jobs sent inside the window
  std::map<std::string, std::uint64_t> errors;   // by status code, inside the window
  std::map<std::uint64_t, Second> timeline;      // by second of the window
  std::atomic<std::uint64_t> sent_in_window{0}, ok{0}, failed{0};
};

class Stream {
 public:
  Stream(StreamSpec spec, const std::string& broker) : spec_(std::move(spec)), client_(options(broker, spec_.tenant)) {
    request_.kernel = spec_.kernel;
    request_.tenant = spec_.tenant;
    request_.inputs = make_inputs(spec_);
    for (const auto& [k, v] : spec_.params) request_.params[k] = v;
    request_.priority = spec_.priority;
    request_.placement = spec_.placement;
    request_.timeout = std::chrono::milliseconds(spec_.timeout_ms);
  }

  // Actor streams: input 0 goes into each actor once, before the clock starts.
  void prepare() {
    if (spec_.actors == 0 || request_.inputs.empty()) return;
    for (std::uint32_t i = 0; i < spec_.actors; ++i) {
      Actor actor(client_, spec_.tenant, "loadtest-" + spec_.name + "-" + std::to_string(i));
      const JobResult r = actor.put("in0", request_.inputs[0]).get();
      if (!r.ok()) throw std::runtime_error("stream " + spec_.name + ": cannot prepare actor: " + r.status.to_string());
    }
    request_.resident_inputs.assign(request_.inputs.size(), "");
    request_.resident_inputs[0] = "in0";
    request_.inputs[0] = Tensor();
  }

  void run(Clock::time_point window_start, Clock::time_point end) {
    window_start_ = window_start;
    end_ = end;
    if (spec_.open) {
      // Paced by the clock, never by answers: job i is due at start + i / rate.
      const auto start = Clock::now();
      for (std::uint64_t i = 0;; ++i) {
        const auto due =
            start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(i / spec_.rate));
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
  static Client::Options options(const std::string& broker, const std::string& tenant) {
    Client::Options o;
    o.broker = broker;
    core::key_files_in_dir("", tenant.empty() ? "default" : tenant, o.key_file, o.broker_key_file);
    return o;
  }

  void send(Clock::time_point intended) {
    {
      std::lock_guard lock(mutex_);
      ++outstanding_;
    }
    const bool counted = intended >= window_start_;
    JobRequest request = request_;
    if (spec_.actors > 0)
      request.actor_id = "loadtest-" + spec_.name + "-" + std::to_string(next_actor_++ % spec_.actors);
    client_.submit(std::move(request), [this, intended, counted](JobResult r) {
      const auto now = Clock::now();
      if (counted) {
        ++stats_.sent_in_window;
        Second& second = stats_.timeline[static_cast<std::uint64_t>(
            std::chrono::duration_cast<std::chrono::seconds>(intended - window_start_).count())];
        if (r.ok()) {
          const auto us =
              static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(now - intended).count());
          stats_.latency.record(us);
          second.latency.record(us);
          ++second.ok;
          ++stats_.ok;
        } else {
          ++stats_.errors[status_code_name(r.status.code())];
          ++second.errors;
          ++stats_.failed;
        }
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
  std::uint64_t next_actor_ = 0;  // send() runs on one thread at a time (the start, then the I/O thread)
  Clock::time_point window_start_{};
  Clock::time_point end_{};
  std::mutex mutex_;
  std::condition_variable drained_;
  std::uint64_t outstanding_ = 0;
};

// A row of the report: one stream, or several merged (a tenant, a kernel, all).
struct Row {
  std::string scope, name;
  std::uint64_t sent = 0, ok = 0;
  LatencyHistogram latency;
  std::map<std::string, std::uint64_t> errors;

  void add(const StreamStats& s) {
    sent += s.sent_in_window;
    ok += s.ok;
    latency.merge(s.latency);
    for (const auto& [code, n] : s.errors) errors[code] += n;
  }
  std::string error_text() const {
    std::string out;
    for (const auto& [code, n] : errors) out += (out.empty() ? "" : " ") + code + ":" + std::to_string(n);
    return out;
  }
};

double ms(std::uint64_t us) { return static_cast<double>(us) / 1000.0; }

}  // namespace

int main(int argc, char** argv) {
  bridge::core::use_huge_pages_for_large_blocks(argv);  // may run this program again, first thing
  CLI::App app(kAbout, "bridge-loadtest");
  app.footer(kFooter);
  std::string broker = "tcp://127.0.0.1:5555", scenario_file, keys_dir, json_file, csv_file;
  std::vector<std::string> stream_specs;
  double duration_s = -1, warmup_s = -1;
  bool quiet = false;
  app.add_option("--broker", broker, "the broker's client endpoint")->capture_default_str();
  app.add_option("--scenario", scenario_file, "a scenario file (loadtest/scenarios/*.yaml)");
  app.add_option("--stream", stream_specs, "a stream SPEC (below); repeatable");
  app.add_option("--duration", duration_s, "seconds measured (overrides the scenario's)");
  app.add_option("--warmup", warmup_s, "seconds before measuring (overrides the scenario's)");
  app.add_option("--json", json_file, "write the report as JSON to FILE (scripts/plot-loadtest draws it)");
  app.add_option("--csv", csv_file, "write the table as CSV to FILE");
  app.add_option("--keys-dir", keys_dir, "tenant T connects with DIR/T.key and DIR/broker.pub");
  app.add_flag("--quiet", quiet, "no progress line");
  return core::run_cli(app, argc, argv, [&] {
    if (stream_specs.empty() && scenario_file.empty())
      throw core::ConfigError("nothing to run: give --scenario FILE or --stream SPEC (see --help)");
    if (!keys_dir.empty()) ::setenv("GPUBRIDGE_KEYS_DIR", keys_dir.c_str(), 1);
    Scenario scenario;
    if (!scenario_file.empty()) scenario = load_scenario(scenario_file);
    for (const auto& spec : stream_specs) scenario.streams.push_back(parse_stream(spec));
    if (duration_s >= 0) scenario.duration_s = duration_s;
    if (warmup_s >= 0) scenario.warmup_s = warmup_s;
    const double duration = scenario.duration_s;

    std::vector<std::unique_ptr<Stream>> streams;
    for (const auto& spec : scenario.streams) {
      streams.push_back(std::make_unique<Stream>(spec, broker));
      streams.back()->prepare();
    }
    const auto start = Clock::now();
    const auto window_start =
        start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(scenario.warmup_s));
    const auto end =
        window_start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(duration));
    std::vector<std::thread> threads;
    for (auto& s : streams) threads.emplace_back([&, stream = s.get()] { stream->run(window_start, end); });
    std::atomic<bool> running{true};
    std::thread progress([&] {
      // One line a second on stderr: how far, and what came back so far in the window.
      std::uint64_t last_ok = 0;
      while (running.load()) {
        std::this_thread::sleep_for(std::chrono::seconds(1));
        if (!running.load() || quiet) continue;
        std::uint64_t ok = 0, failed = 0;
        for (const auto& s : streams) {
          ok += s->stats().ok;
          failed += s->stats().failed;
        }
        const double t = std::chrono::duration<double>(Clock::now() - start).count();
        std::fprintf(stderr, "\r[%5.1f s%s] ok %llu (%llu/s)  errors %llu   ", t,
                     Clock::now() < window_start ? ", warming up" : "", static_cast<unsigned long long>(ok),
                     static_cast<unsigned long long>(ok - last_ok), static_cast<unsigned long long>(failed));
        last_ok = ok;
      }
      if (!quiet) std::fprintf(stderr, "\n");
    });
    for (auto& t : threads) t.join();
    running = false;
    progress.join();

    // Rows: each stream, then merged per tenant and per kernel (when there is more than one
    // stream), then all together.
    std::vector<Row> rows;
    std::map<std::string, Row> tenants, kernels;
    Row all{"all", "all"};
    for (const auto& s : streams) {
      Row row{"stream", s->spec().name};
      row.add(s->stats());
      rows.push_back(std::move(row));
      Row& t = tenants[s->spec().tenant];
      t.scope = "tenant";
      t.name = s->spec().tenant;
      t.add(s->stats());
      Row& k = kernels[s->spec().kernel];
      k.scope = "kernel";
      k.name = s->spec().kernel;
      k.add(s->stats());
      all.add(s->stats());
    }
    if (streams.size() > 1) {
      for (auto& [name, row] : tenants) rows.push_back(std::move(row));
      for (auto& [name, row] : kernels) rows.push_back(std::move(row));
      rows.push_back(std::move(all));
    }

    std::printf("%-7s %-24s %9s %9s %10s %8s %8s %8s %8s %9s  %s\n", "SCOPE", "NAME", "SENT", "OK", "OK/s", "p50 ms",
                "p90 ms", "p99 ms", "p99.9 ms", "max ms", "ERRORS");
    for (const Row& r : rows) {
      const std::string errors = r.error_text();
      std::printf("%-7s %-24s %9llu %9llu %10.1f %8.3f %8.3f %8.3f %8.3f %9.3f  %s\n", r.scope.c_str(), r.name.c_str(),
                  static_cast<unsigned long long>(r.sent), static_cast<unsigned long long>(r.ok),
                  static_cast<double>(r.ok) / duration, ms(r.latency.percentile(50)), ms(r.latency.percentile(90)),
                  ms(r.latency.percentile(99)), ms(r.latency.percentile(99.9)), ms(r.latency.max()),
                  errors.empty() ? "-" : errors.c_str());
    }

    auto row_json = [&](const Row& r, const StreamSpec* spec) {
      nlohmann::ordered_json row = {{"scope", r.scope}, {"name", r.name}};
      if (spec != nullptr) {
        row["tenant"] = spec->tenant;
        row["kernel"] = spec->kernel;
        row["mode"] = spec->open ? "open" : "closed";
        row["rate"] = spec->open ? spec->rate : 0;
        row["concurrency"] = spec->open ? 0 : spec->concurrency;
        row["bytes"] = spec->bytes;
        row["actors"] = spec->actors;
      }
      row["sent"] = r.sent;
      row["ok"] = r.ok;
      row["ok_per_s"] = static_cast<double>(r.ok) / duration;
      row["p50_ms"] = ms(r.latency.percentile(50));
      row["p90_ms"] = ms(r.latency.percentile(90));
      row["p99_ms"] = ms(r.latency.percentile(99));
      row["p999_ms"] = ms(r.latency.percentile(99.9));
      row["max_ms"] = ms(r.latency.max());
      row["errors"] = nlohmann::ordered_json::object();
      for (const auto& [code, count] : r.errors) row["errors"][code] = count;
      return row;
    };
    if (!json_file.empty()) {
      nlohmann::ordered_json report = {{"duration_s", duration},
                                       {"warmup_s", scenario.warmup_s},
                                       {"streams", nlohmann::ordered_json::array()},
                                       {"rows", nlohmann::ordered_json::array()},
                                       {"timeline", nlohmann::ordered_json::array()},
                                       {"histograms", nlohmann::ordered_json::object()}};
      for (std::size_t i = 0; i < streams.size(); ++i)
        report["streams"].push_back(row_json(rows[i], &streams[i]->spec()));
      for (const Row& r : rows) report["rows"].push_back(row_json(r, nullptr));
      // For plots: latency over time, and the whole distribution (percentile curve).
      for (const auto& s : streams)
        for (const auto& [second, data] : s->stats().timeline)
          report["timeline"].push_back({{"stream", s->spec().name},
                                        {"second", second},
                                        {"ok", data.ok},
                                        {"errors", data.errors},
                                        {"p50_ms", ms(data.latency.percentile(50))},
                                        {"p99_ms", ms(data.latency.percentile(99))},
                                        {"max_ms", ms(data.latency.max())}});
      for (const auto& s : streams) {
        nlohmann::ordered_json buckets = nlohmann::ordered_json::array();
        for (const auto& [us, count] : s->stats().latency.buckets()) buckets.push_back({ms(us), count});
        report["histograms"][s->spec().name] = std::move(buckets);
      }
      std::ofstream(json_file) << report.dump() << "\n";
    }
    if (!csv_file.empty()) {
      std::ofstream csv(csv_file);
      csv << "scope,name,sent,ok,ok_per_s,p50_ms,p90_ms,p99_ms,p999_ms,max_ms,errors\n";
      for (const Row& r : rows)
        csv << r.scope << "," << r.name << "," << r.sent << "," << r.ok << "," << static_cast<double>(r.ok) / duration
            << "," << ms(r.latency.percentile(50)) << "," << ms(r.latency.percentile(90)) << ","
            << ms(r.latency.percentile(99)) << "," << ms(r.latency.percentile(99.9)) << "," << ms(r.latency.max())
            << "," << r.error_text() << "\n";
    }
    return 0;
  });
}
