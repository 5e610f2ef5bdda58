// bridge-chaos: drives a fleet with checkable work while loadtest/chaos kills and restarts its
// processes, and prints what the clients saw: submitted, results, lost, duplicated, wrong, and actor
// state regressions, and the longest time no result came. Every job is checked: `vector_add` of inputs derived from the
// job's number (so the answer is known), and per actor a sequence of idempotent state changes ("step" := i), whose
// versions must only grow and whose final state must be the last acknowledged step. Exit status 0 only if lost,
// duplicated, wrong and regressions are all 0.
#include <atomic>
#include <cstdio>
#include <fstream>
#include <future>
#include <iostream>
#include <map>
#include <mutex>
#include <thread>

#include <nlohmann/json.hpp>

#include "bridge/actor.hpp"
#include "bridge/core/cli.hpp"
#include "bridge/core/curve.hpp"
#include "bridge/core/program.hpp"

namespace {

using namespace bridge;
using Clock = std::chrono::steady_clock;

constexpr const char* kAbout =
    R"(Sends checkable jobs and actor calls for S seconds (each retried by the client library through
outages), then checks every actor's final state. Prints one table; exits 1 if anything was lost,
duplicated, wrong, or an actor's state went backwards. --keys-dir (or $GPUBRIDGE_KEYS_DIR): connects
with DIR/TENANT.key, the broker's key DIR/broker.pub.
)";

struct Tally {
  std::atomic<long> submitted{0}, results{0}, ok{0}, lost{0}, duplicated{0}, wrong{0};
  std::atomic<long> actor_calls{0}, regressions{0};
  std::mutex mutex;
  std::map<std::string, long> lost_by_code;  // guarded by mutex
  // The longest time without an OK result, from any stream: how long service was down.
  std::atomic<std::int64_t> last_ok_ns{Clock::now().time_since_epoch().count()}, longest_gap_ns{0};
  void served() {
    ++ok;
    const std::int64_t now = Clock::now().time_since_epoch().count();
    const std::int64_t gap = now - last_ok_ns.exchange(now);
    for (std::int64_t seen = longest_gap_ns.load(); gap > seen && !longest_gap_ns.compare_exchange_weak(seen, gap);) {
    }
  }
  long longest_gap_ms() const { return static_cast<long>(longest_gap_ns.load() / 1000000); }
  void lose(const Status& status) {
    ++lost;
    std::lock_guard lock(mutex);
    ++lost_by_code[status_code_name(status.code())];
  }
};

// Submits and waits, counting every delivery of a result, so that a second one would show.
JobResult run_counted(Client& client, JobRequest request, Tally& tally) {
  auto promise = std::make_shared<std::promise<JobResult>>();
  auto deliveries = std::make_shared<std::atomic<int>>(0);
  auto future = promise->get_future();
  ++tally.submitted;
  client.submit(std::move(request), [promise, deliveries, &tally](JobResult r) {
    ++tally.results;
    if (deliveries->fetch_add(1) > 0) {
      ++tally.duplicated;
      return;
    }
    promise->set_value(std::move(r));
  });
  return future.get();
}

void plain_jobs(Client& client, std::uint64_t stream, Clock::time_point until, std::chrono::milliseconds timeout,
                Tally& tally) {
  for (std::uint64_t n = 0; Clock::now() < until; ++n) {
    const float base = static_cast<float>((stream * 1000003 + n) % 9973);
    std::vector<float> a(256), b(256);
    for (std::size_t i = 0; i < a.size(); ++i) {
      a[i] = base + static_cast<float>(i);
      b[i] = 2.0f * static_cast<float>(i) - base;
    }
    JobRequest job{.kernel = "vector_add",
                   .inputs = {Tensor::from<float>(a, {256}), Tensor::from<float>(b, {256})},
                   .timeout = timeout};
    const JobResult r = run_counted(client, std::move(job), tally);
    if (!r.ok()) {
      tally.lose(r.status);
      continue;
    }
    tally.served();
    const auto c = r.outputs.empty() ? std::span<const float>() : r.outputs[0].values<float>();
    bool right = c.size() == a.size();
    for (std::size_t i = 0; right && i < c.size(); ++i) right = c[i] == a[i] + b[i];
    if (!right) ++tally.wrong;
  }
}

struct ActorReport {
  std::string id;
  long calls = 0;
  std::uint64_t last_version = 0;
  long last_step = -1;
};

// One actor, one call at a time: "step" := i (idempotent, so a call the fleet runs twice, as
// at-least-once execution allows, leaves the same state).
ActorReport actor_calls(Client& client, const std::string& tenant, const std::string& id, Clock::time_point until,
                        std::chrono::milliseconds timeout, Tally& tally) {
  Actor actor(client, tenant, id);
  ActorReport report{id};
  for (long i = 0; Clock::now() < until; ++i) {
    JobRequest call{.kernel = "passthrough",
                    .inputs = {Tensor::vector<float>({static_cast<float>(i)})},
                    .tenant = tenant,
                    .actor_id = id,
                    .timeout = timeout};
    call.keep_outputs = {"step"};
    const JobResult r = run_counted(client, std::move(call), tally);
    ++tally.actor_calls;
    if (!r.ok()) {
      tally.lose(r.status);
      continue;
    }
    tally.served();
    ++report.calls;
    if (r.actor_version <= report.last_version) {
      ++tally.regressions;
      std::cerr << "actor " << id << ": version " << r.actor_version << " after " << report.last_version << "\n";
    }
    report.last_version = r.actor_version;
    report.last_step = i;
  }
  return report;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app(kAbout, "bridge-chaos");
  Client::Options options;
  options.tenant = "default";
  std::string keys_dir, json_file;
  std::uint32_t timeout_ms = 30000, duration_s = 30, streams = 8, actors = 4;
  app.add_option("--broker", options.broker, "the broker's client endpoint")->capture_default_str();
  app.add_option("--tenant", options.tenant, "the tenant to send as")->capture_default_str();
  app.add_option("--keys-dir", keys_dir, "connect with DIR/TENANT.key and DIR/broker.pub");
  app.add_option("--duration", duration_s, "seconds of load")->capture_default_str();
  app.add_option("--jobs-in-flight", streams, "plain jobs kept in flight")->capture_default_str();
  app.add_option("--actors", actors, "actors called in turn, each from its own thread")->capture_default_str();
  app.add_option("--job-timeout-ms", timeout_ms, "a job without an OK answer in this time is lost")
      ->capture_default_str();
  app.add_option("--json", json_file, "also write the tally as JSON to FILE");
  return core::run_cli(app, argc, argv, [&] {
    core::key_files_in_dir(keys_dir, options.tenant, options.key_file, options.broker_key_file);
    // Through outages: refusals are retried with backoff, and pending jobs are re-sent to a broker
    // that restarted. A job is lost only if it has no OK answer within its timeout.
    options.retry = {.max_attempts = 1000,
                     .initial_backoff = std::chrono::milliseconds(50),
                     .max_backoff = std::chrono::milliseconds(1000)};
    options.broker_check = std::chrono::milliseconds(300);
    const auto timeout = std::chrono::milliseconds(timeout_ms);
    const auto duration = std::chrono::seconds(duration_s);
    Client client(options);
    Tally tally;  // from now: the time to the first result counts as a gap too
    const auto until = Clock::now() + duration;
    std::vector<std::thread> threads;
    for (std::uint32_t s = 0; s < streams; ++s)
      threads.emplace_back([&, s] { plain_jobs(client, s, until, timeout, tally); });
    std::vector<ActorReport> reports(actors);
    for (std::uint32_t a = 0; a < actors; ++a)
      threads.emplace_back([&, a] {
        reports[a] = actor_calls(client, options.tenant, "chaos-" + std::to_string(a), until, timeout, tally);
      });
    for (auto& t : threads) t.join();

    // Each actor's final state, read back through the fleet: the last acknowledged step, at a
    // version no lower than the last one acknowledged.
    for (const ActorReport& report : reports) {
      if (report.last_step < 0) continue;
      Actor actor(client, options.tenant, report.id);
      JobResult state;
      for (int attempt = 0; attempt < 20; ++attempt) {  // the fleet may still be recovering
        state = actor.get("step").get();
        if (state.ok()) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(500));
      }
      ActorInfo info;
      const bool described = actor.info(info).is_ok();
      const bool same_step = state.ok() && !state.outputs.empty() &&
                             state.outputs[0].values<float>()[0] == static_cast<float>(report.last_step);
      if (!same_step || !described || info.version < report.last_version) {
        ++tally.regressions;
        std::cerr << "actor " << report.id << ": final state " << (state.ok() ? "" : state.status.to_string())
                  << (same_step ? "" : " is not the last acknowledged step " + std::to_string(report.last_step))
                  << ", version " << info.version << " (last acknowledged " << report.last_version << ")\n";
      }
    }

    std::string lost_codes;
    for (const auto& [code, count] : tally.lost_by_code) lost_codes += " " + code + "=" + std::to_string(count);
    std::printf("%-12s %-10s %-6s %-10s %-6s %-20s %s\n", "SUBMITTED", "RESULTS", "LOST", "DUPLICATED", "WRONG",
                "ACTOR REGRESSIONS", "(actor calls)");
    std::printf("%-12ld %-10ld %-6ld %-10ld %-6ld %-20ld %ld\n", tally.submitted.load(), tally.results.load(),
                tally.lost.load(), tally.duplicated.load(), tally.wrong.load(), tally.regressions.load(),
                tally.actor_calls.load());
    if (!lost_codes.empty()) std::printf("lost by code:%s\n", lost_codes.c_str());
    std::printf("jobs re-sent to a restarted broker: %llu; moves to another broker: %llu\n",
                static_cast<unsigned long long>(client.resent_after_restart()),
                static_cast<unsigned long long>(client.broker_moves()));
    std::printf("longest time without a result: %ld ms\n", tally.longest_gap_ms());
    if (!json_file.empty()) {
      const nlohmann::ordered_json report = {{"submitted", tally.submitted.load()},
                                             {"results", tally.results.load()},
                                             {"lost", tally.lost.load()},
                                             {"duplicated", tally.duplicated.load()},
                                             {"wrong", tally.wrong.load()},
                                             {"actor_regressions", tally.regressions.load()},
                                             {"actor_calls", tally.actor_calls.load()},
                                             {"resent_after_restart", client.resent_after_restart()},
                                             {"broker_moves", client.broker_moves()},
                                             {"longest_gap_ms", tally.longest_gap_ms()}};
      std::ofstream(json_file) << report.dump() << "\n";
    }
    const bool clean = tally.lost == 0 && tally.duplicated == 0 && tally.wrong == 0 && tally.regressions == 0;
    return clean ? 0 : 1;
  });
}
