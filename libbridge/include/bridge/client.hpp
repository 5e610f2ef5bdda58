#pragma once
/// @file bridge::Client, the way to run kernels on a GpuBridge fleet.
///
///   bridge::Client client({.broker = "tcp://127.0.0.1:5555", .tenant = "team-a"});
///   bridge::JobRequest job{.kernel = "vector_add",
///                          .inputs = {bridge::Tensor::vector<float>({1, 2}), bridge::Tensor::vector<float>({3, 4})}};
///   bridge::JobResult result = client.run(job);        // or client.submit(job) for a std::future
///   if (!result.ok()) std::cerr << result.status.to_string();

#include <chrono>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "bridge/export.hpp"
#include "bridge/fleet.hpp"
#include "bridge/job.hpp"

namespace bridge {

/// A connection to one broker. Thread-safety: every method may be called from any number of threads
/// at once; one internal I/O thread owns the socket. Jobs are answered exactly once each: with the
/// fleet's result, or, if none arrives within the timeout, with DEADLINE_EXCEEDED; on destruction,
/// jobs still pending are answered CANCELLED.
class BRIDGE_API Client {
 public:
  /// Re-sending jobs refused for a passing reason (RESOURCE_EXHAUSTED, QUEUE_FULL, UNAVAILABLE).
  /// Off by default: the caller sees every refusal. Waits max(retry_after, backoff) with full
  /// jitter, backoff doubling from `initial_backoff` to `max_backoff`, and never past the job's timeout.
  struct RetryPolicy {
    int max_attempts = 1;  ///< 1 = no retry
    std::chrono::milliseconds initial_backoff{20};
    std::chrono::milliseconds max_backoff{2000};
  };

  struct Options {
    /// The broker's client endpoint ("frontend"), or several brokers of one fleet separated by
    /// commas ("tcp://a:5555,tcp://b:5555"; they share one Redis and one broker key). The client
    /// starts at a random one of them, and moves to the next when its broker is silent for two
    /// broker_checks while requests wait: pending jobs go again, with the same ids (at least once,
    /// as after a broker restart); control requests are answered UNAVAILABLE (ask again).
    std::string broker = "tcp://127.0.0.1:5555";
    /// The tenant requests name when they leave it empty. Empty: the tenant the broker has enrolled
    /// this client's key for (with `security: none`, the tenant "default"). A request naming a
    /// tenant other than the key's is PERMISSION_DENIED.
    std::string tenant;
    /// CURVE (docs/security.md): this client's key file (`bridgectl keygen NAME` writes NAME.key,
    /// holding the secret key; its public key is listed under the tenant in tenants.yaml), and the
    /// broker's public key file. Empty: GPUBRIDGE_KEY_FILE and GPUBRIDGE_BROKER_KEY_FILE; all unset:
    /// no CURVE, for a broker with `security: none`. Read when the Client is made (ConfigError).
    std::string key_file;
    std::string broker_key_file;
    std::chrono::milliseconds timeout{30000};  ///< default job and status timeout
    RetryPolicy retry;
    /// While jobs are pending and the broker has said nothing for this long, ask it who it is
    /// (Ping). A broker that restarted lost the jobs it held: the client sends them again, with the
    /// same job ids, so a restart loses no job (docs/protocol.md, "Delivery"). 0 turns this off.
    std::chrono::milliseconds broker_check{1000};
    /// Tensors of at most this many bytes travel inside the job's header rather than in frames of
    /// their own: the inputs (up to 16 KiB of them per job, copied), and the outputs the worker
    /// sends back (docs/protocol.md, "Inline tensors"). For small tensors a frame costs more than its
    /// bytes. 0: every tensor in a frame of its own.
    std::uint32_t inline_bytes = 4096;
    /// Messages that are ready together travel as one (docs/protocol.md, "Batches"): the job
    /// requests the I/O thread sends in one pass (once the broker said it reads them), and the
    /// broker's answers of one wake-up. Under load, fewer messages per job for the broker, this
    /// client and ZeroMQ. false: one message per request and per answer.
    bool batches = true;
    /// Called on the I/O thread at the end of each of its wake-ups (whether or not it ran callbacks
    /// then; so possibly many times per job), and again after the last answers when the client
    /// closes. For a caller whose callbacks hand results to another thread: wake that thread once per
    /// batch of results here rather than once per result. Must return quickly, must not throw (as
    /// for callbacks, an exception ends the process), and should not call into this Client.
    std::function<void()> after_callbacks;
  };

  using Callback = std::function<void(JobResult)>;

  explicit Client(Options options);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  /// Sends a job; the future is fulfilled once, with the result or an error status.
  /// Input tensors are shared, not copied (but for inline ones, Options::inline_bytes), and must not
  /// be modified afterwards.
  std::future<JobResult> submit(JobRequest request);

  /// Like submit(), but calls `done` on the client's I/O thread, and returns the job's id (for
  /// cancel()). `done` must return quickly and must not call back into this Client's blocking
  /// methods (run, status). It may close() or destroy the Client (a callback holding the last
  /// shared_ptr to it, say): the jobs still pending are then answered CANCELLED after it returns.
  std::uint64_t submit(JobRequest request, Callback done);

  /// Stops job `job_id` (from submit() with a callback). The job is answered CANCELLED at once, if
  /// it is still pending, and the broker is told: a job still waiting never runs, and a running one
  /// is stopped on its worker (CPU kernels between chunks, pipelines between stages), which frees
  /// the slot. A result already on its way is dropped. An unknown or answered id is ignored.
  void cancel(std::uint64_t job_id);

  /// Sends a job and waits for its result.
  JobResult run(JobRequest request);

  /// Sends one job per element of `inputs`, all running `kernel` with `params`, in one call; the
  /// futures are in the same order. Workers run compatible small jobs waiting together as one launch
  /// (dynamic batching, worker.yaml max_batch).
  std::vector<std::future<JobResult>> submit_batch(const std::string& kernel, std::vector<std::vector<Tensor>> inputs,
                                                   const std::map<std::string, double>& params = {});

  /// Asks the broker for its view of the fleet. Blocks up to the default timeout.
  Status status(FleetStatus& out);

  /// Asks the broker for `tenant`'s quota and live usage (every tenant if empty). Blocks up to the
  /// default timeout; an unknown tenant is UNKNOWN_TENANT.
  Status quotas(const std::string& tenant, QuotaReport& out);

  /// An actor's version, placement and resident tensors, from Redis (bridgectl actor show). Blocks
  /// up to the default timeout. An actor that never saved state comes back with found == false.
  Status actor_info(const std::string& tenant, const std::string& actor_id, ActorInfo& out);

  /// Drops the actor's resident tensors (in Redis and on its worker) and any mark that its state was
  /// lost (DATA_LOSS): the next call starts from an empty actor, at a newer version. ABORTED while
  /// the actor has calls in flight on its broker. `out` is the actor after the reset.
  Status actor_reset(const std::string& tenant, const std::string& actor_id, ActorInfo& out);

  /// Ends the connection: every pending job and request is answered CANCELLED, and the broker is
  /// told to stop the jobs (as cancel() does), so that they neither run on nor hold the tenant's
  /// quota for the rest of their timeouts. Returns once every answer was given. Later calls are
  /// answered CANCELLED at once. Idempotent and thread-safe; the destructor calls it.
  void close();

  /// While one lives, the jobs this thread submits to `client` are handed to its I/O thread
  /// together when it ends: one wake-up of that thread instead of one per job. For a thread that
  /// submits many jobs in a row (a loop, or the callbacks answering a batch of results);
  /// submit_batch() uses one. Other threads' jobs are not held, and jobs submitted from the I/O
  /// thread's own callbacks are always sent together after the callbacks of each wake-up. Held jobs
  /// may leave earlier (when another thread's job wakes the I/O thread, it takes every queued job),
  /// never later than its end; until they leave nothing answers them (their timeouts count from
  /// submit but are not checked). So keep it short-lived, and do not wait in it for a held job's
  /// future: that waits for ever. run(), status(), quotas() and actor_info() send what is held
  /// first, Stream writes are never held, and send_now() sends by hand. Nested ones count as one; it
  /// ends the hold of the thread that made it, wherever it is destroyed. Must not outlive `client`.
  ///
  ///   { bridge::Client::BatchedSends together(client); for (auto& job : jobs) client.submit(job, done); }
  class BRIDGE_API BatchedSends {
   public:
    explicit BatchedSends(Client& client);
    ~BatchedSends();
    /// Hands over what this thread holds now, and goes on holding.
    void send_now();
    BatchedSends(const BatchedSends&) = delete;
    BatchedSends& operator=(const BatchedSends&) = delete;

   private:
    Client& client_;
    std::thread::id holder_;
  };

  const Options& options() const;
  /// Jobs sent again because the broker restarted while they were pending (see broker_check).
  std::uint64_t resent_after_restart() const;
  /// Times the client left a silent broker for the next one of its list (see Options::broker).
  std::uint64_t broker_moves() const;
  /// The broker endpoint the client uses now (one of Options::broker's).
  std::string broker() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace bridge
