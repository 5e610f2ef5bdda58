// bridge-abuse: one tenant doing what a careless or hostile tenant does, for loadtest/abuse to run
// beside a well-behaved one. Five patterns at once, each in its own thread:
//   oversized  matmul of a[8200,0] x b[0,8200]: nothing sent, 269 MB of result asked for
//   overdue    sleep 60 s with a 200 ms deadline, as many in flight as the quota allows
//   expanding  16 resizes to 4100x4100 from one pixel: 4 bytes sent, over 1 GiB of outputs asked for
//   unread     4 MiB passthrough jobs on a raw socket that never reads its results
//   state      actor calls that each keep an n x n matmul output (no input bytes) of
//              --actor-state-mib MiB, written through to Redis (0: off)
// Prints, per pattern, the answers by status code. Exits 1 if a pattern got an answer it must not
// (an OK for an oversized or expanding job, a job that ran past its deadline answered OK) or if the
// broker stopped answering.
#include <atomic>
#include <deque>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <map>
#include <mutex>
#include <thread>

#include <zmq_addon.hpp>

#include "bridge/actor.hpp"
#include "bridge/client.hpp"
#include "bridge/core/curve.hpp"
#include "bridge/core/cli.hpp"
#include "bridge/core/job_codec.hpp"
#include "bridge/core/program.hpp"

namespace {

using namespace bridge;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr const char* kAbout =
    R"(Runs hostile patterns for S seconds (default 10): oversized outputs, jobs far past their deadlines,
expanding pipelines (as --tenant, default hostile), a client that never reads its 4 MiB results (as
--unread-tenant, default the same), and, with --actor-state-mib N > 0 (default 0), actor calls that
each keep N MiB of state (as --actor-tenant, default the same). Prints the answers each got; exits 1
if any got an answer it must not. --keys-dir (or $GPUBRIDGE_KEYS_DIR): each tenant T connects with
DIR/T.key, the broker's key DIR/broker.pub (docs/security.md).
)";

struct Pattern {
  std::mutex mutex;
  std::map<std::string, long> answers;  // status code name -> count
  std::atomic<long> sent{0};
  void count(StatusCode code) {
    std::lock_guard lock(mutex);
    ++answers[status_code_name(code)];
  }
  long of(StatusCode code) {
    std::lock_guard lock(mutex);
    auto it = answers.find(status_code_name(code));
    return it == answers.end() ? 0 : it->second;
  }
};

// Sends `make()` with `in_flight` jobs outstanding until `until`; counts each answer's status.
void keep_sending(Client& client, const std::function<JobRequest()>& make, int in_flight, Clock::time_point until,
                  Pattern& pattern) {
  std::vector<std::thread> lanes;
  for (int i = 0; i < in_flight; ++i)
    lanes.emplace_back([&] {
      while (Clock::now() < until) {
        ++pattern.sent;
        JobResult r = client.run(make());
        pattern.count(r.status.code());
        // Refused for the quota: the tenant is at its limit, which is the point; try again shortly.
        if (r.status.code() == StatusCode::kResourceExhausted) std::this_thread::sleep_for(milliseconds(10));
      }
    });
  for (auto& lane : lanes) lane.join();
}

// A client whose socket holds almost nothing, so that its unread results stay in the broker.
void never_read(const std::string& broker, const std::string& tenant, Clock::time_point until, Pattern& pattern) {
  zmq::context_t context;
  zmq::socket_t socket(context, zmq::socket_type::dealer);
  socket.set(zmq::sockopt::linger, 0);
  socket.set(zmq::sockopt::rcvhwm, 1);
  socket.set(zmq::sockopt::rcvbuf, 4096);
  socket.set(zmq::sockopt::sndtimeo, 100);
  std::string key_file, broker_key_file;
  core::key_files_in_dir("", tenant, key_file, broker_key_file);
  core::apply_curve_client(socket, core::read_client_keys(key_file, broker_key_file, true));
  socket.connect(broker);
  const Tensor payload = Tensor::zeros(DType::kU8, {4 << 20});
  std::uint64_t id = 0;
  while (Clock::now() < until) {
    JobRequest request{.kernel = "passthrough", .inputs = {payload}, .tenant = tenant, .timeout = milliseconds(10000)};
    auto frames = core::encode_request(request, ++id, tenant, milliseconds(10000));
    if (zmq::send_multipart(socket, frames)) ++pattern.sent;
    std::this_thread::sleep_for(milliseconds(50));
  }
}

// One actor whose every call keeps an n x n f32 output, about `mib` MiB, from no input bytes: the
// broker writes each through to Redis before the call is answered.
void keep_state(const std::string& broker, const std::string& tenant, std::uint64_t mib, Clock::time_point until,
                Pattern& pattern) {
  Client::Options options;
  options.broker = broker;
  options.tenant = tenant;
  core::key_files_in_dir("", tenant, options.key_file, options.broker_key_file);
  options.timeout = std::chrono::seconds(30);
  Client client(options);
  Actor actor(client, "", "abuse-state");
  const auto n = static_cast<std::int64_t>(std::sqrt(static_cast<double>(mib << 20) / sizeof(float)));
  while (Clock::now() < until) {
    ++pattern.sent;
    JobResult r = actor
                      .call({.kernel = "matmul",
                             .args = {Tensor::zeros(DType::kF32, {n, 0}), Tensor::zeros(DType::kF32, {0, n})},
                             .keep = {"state"}})
                      .get();
    pattern.count(r.status.code());
  }
}

void print(const char* name, Pattern& p) {
  std::lock_guard lock(p.mutex);
  std::printf("%-10s sent %6ld  answers:", name, p.sent.load());
  if (p.answers.empty()) std::printf(" (none read)");
  for (const auto& [code, n] : p.answers) std::printf(" %s %ld", code.c_str(), n);
  std::printf("\n");
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app(kAbout, "bridge-abuse");
  Client::Options options;
  options.tenant = "hostile";
  std::string keys_dir, unread_tenant, actor_tenant;
  std::uint32_t duration_s = 10;
  std::uint64_t state_mib = 0;
  app.add_option("--broker", options.broker, "the broker's client endpoint")->capture_default_str();
  app.add_option("--tenant", options.tenant, "the tenant of the hostile patterns")->capture_default_str();
  app.add_option("--unread-tenant", unread_tenant, "the tenant that never reads (default: --tenant)");
  app.add_option("--actor-tenant", actor_tenant, "the tenant of the actor calls (default: --tenant)");
  app.add_option("--actor-state-mib", state_mib, "MiB of state each actor call keeps (0: no actor calls)")
      ->capture_default_str();
  app.add_option("--duration", duration_s, "seconds")->capture_default_str();
  app.add_option("--keys-dir", keys_dir, "tenant T connects with DIR/T.key and DIR/broker.pub");
  return core::run_cli(app, argc, argv, [&] {
    if (!keys_dir.empty()) ::setenv("GPUBRIDGE_KEYS_DIR", keys_dir.c_str(), 1);
    core::key_files_in_dir("", options.tenant, options.key_file, options.broker_key_file);
    if (unread_tenant.empty()) unread_tenant = options.tenant;
    if (actor_tenant.empty()) actor_tenant = options.tenant;
    options.timeout = milliseconds(10000);
    const auto until = Clock::now() + std::chrono::seconds(duration_s);
    Client client(options);

    Pattern oversized, overdue, expanding, unread, state;
    Pipeline expand;
    for (int i = 0; i < 16; ++i) expand.then("resize", {{"height", 4100}, {"width", 4100}});
    const Tensor pixel = Tensor::zeros(DType::kF32, {1, 1});
    std::deque<std::thread> threads;  // a vector trips GCC 12's -Warray-bounds (a false positive) here
    threads.emplace_back([&] {
      keep_sending(
          client,
          [] {
            return JobRequest{.kernel = "matmul",
                              .inputs = {Tensor::zeros(DType::kF32, {8200, 0}), Tensor::zeros(DType::kF32, {0, 8200})}};
          },
          2, until, oversized);
    });
    threads.emplace_back([&] {
      keep_sending(
          client,
          [] {
            return JobRequest{.kernel = "sleep", .params = {{"ms", 60000}}, .timeout = milliseconds(200)};
          },
          8, until, overdue);
    });
    threads.emplace_back([&] { keep_sending(client, [&] { return expand.request({pixel}); }, 2, until, expanding); });
    threads.emplace_back([&] { never_read(options.broker, unread_tenant, until, unread); });
    if (state_mib > 0) threads.emplace_back([&] { keep_state(options.broker, actor_tenant, state_mib, until, state); });
    for (auto& t : threads) t.join();

    print("oversized", oversized);
    print("overdue", overdue);
    print("expanding", expanding);
    print("unread", unread);
    if (state_mib > 0) print("state", state);
    // What must never happen: memory handed out for outputs over the limits, a job past its deadline
    // answered OK, or answers that stopped coming (the client's own deadline).
    const long wrong = oversized.of(StatusCode::kOk) + expanding.of(StatusCode::kOk) + overdue.of(StatusCode::kOk);
    const long silent = oversized.of(StatusCode::kDeadlineExceeded) + expanding.of(StatusCode::kDeadlineExceeded) +
                        state.of(StatusCode::kDeadlineExceeded);
    if (wrong > 0 || silent > 0) {
      std::printf("abuse: FAILED: %ld answers that must not be OK, %ld refusals that never came\n", wrong, silent);
      return 1;
    }
    return 0;
  });
}
