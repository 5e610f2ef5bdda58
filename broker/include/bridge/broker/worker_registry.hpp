#pragma once
/// @file WorkerRegistry: the workers a broker knows, their credits and the jobs they hold.

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "bridge/broker/job.hpp"
#include "bridge/core/liveness.hpp"
#include "bridge/fleet.hpp"

namespace bridge::broker {

struct WorkerRecord {
  std::string id;  ///< the worker's id, from its hello
  /// The routing id of the connection the worker's latest hello came on: everything for the worker
  /// goes there. Each connection of a worker has its own (docs/protocol.md).
  std::string route;
  std::uint64_t incarnation = 0;
  std::uint32_t connection = 0;  ///< the hello's connection count (0: the worker counts none)
  DeviceInfo device;
  DeviceMetrics metrics;
  std::vector<std::string> kernels;    ///< sorted
  std::uint32_t slots = 0;             ///< jobs that run here at once
  /// Jobs the broker may send beyond `slots`; they wait on the worker and start the moment a slot
  /// frees, without a round trip to the broker. Credits: slots + prefetch.
  std::uint32_t prefetch = 0;
  std::uint32_t heartbeat_ms = 1000;
  Clock::time_point last_seen{};
  /// How much longer than its liveness this worker is waited for: the transfer time of the large
  /// message its last one announced (core/liveness.hpp); 0 after any other message.
  std::chrono::milliseconds transfer_grace{0};
  bool draining = false;               ///< said Goodbye: no new jobs, results still welcome
  std::uint64_t completed = 0;
  Clock::time_point last_dispatch{};   ///< breaks ties between equally free workers (round robin)
  /// Jobs holding a credit here (Running or Cancelling; owned by JobTable), by dispatch id. A credit
  /// is freed only when the worker answers or is lost, never when the client is answered.
  std::unordered_map<std::uint64_t, Job*> inflight;

  bool has_kernel(const std::string& kernel) const;
  bool has_kernels(const std::vector<std::string>& kernels) const;
  /// Room for one more job: an idle slot, or with `with_prefetch` a place in its queue.
  bool has_free_credit(bool with_prefetch = true) const {
    return !draining && inflight.size() < slots + (with_prefetch ? prefetch : 0);
  }
  /// A GPU worker whose circuit breaker is open serves on its CPU, so it counts as a CPU worker.
  bool is_gpu() const { return device.kind != DeviceKind::kCpu && !metrics.gpu_disabled; }
};

/// What a hello was, to the registry.
enum class HelloKind {
  kNew,             ///< a worker it did not know
  kSameConnection,  ///< a known process again on the connection it knew (or one that counts none)
  kNewConnection,   ///< a known process on a newer connection
  kNewProcess,      ///< a new process under a known id
  kStale,           ///< a known process on an older connection than its last hello's: ignored
};

/// Not thread-safe: owned by the broker's loop thread.
class WorkerRegistry {
 public:
  struct Registration {
    HelloKind kind;
    WorkerRecord& worker;
  };
  /// Registers a worker from its hello, or updates the one it knows under that id. Jobs that will
  /// never be answered are moved out of the record into `let_go` (to send elsewhere): for a new
  /// process under the id, all of them; for a newer connection of the same process, those not in
  /// `running` (what the worker holds as it says hello), since they went to older connections and
  /// never arrived or were answered there. A stale hello changes nothing.
  Registration upsert(WorkerRecord hello, std::vector<Job*>& let_go, const std::vector<std::uint64_t>& running = {});
  WorkerRecord* find(const std::string& id);
  /// The worker whose latest hello came on the connection with routing id `route`.
  WorkerRecord* find_by_route(std::string_view route);
  /// Removes a worker and hands back the jobs it held, oldest first.
  std::vector<Job*> remove(const std::string& id);
  /// Workers silent for more than `liveness` of their heartbeat intervals plus the transfer time of
  /// what they announced. Time the broker's own I/O thread was busy (own_sends()) does not count
  /// as silence: nothing could be read then.
  std::vector<std::string> silent_since(Clock::time_point now, std::uint32_t liveness) const;
  /// The broker's own large sends (a result to a client, a job to a worker), each as its transfer
  /// time at link_floor_mib_s. Its one ZeroMQ I/O thread encrypts each whole under CURVE, one after
  /// another, and workers' heartbeats wait to be read meanwhile; silent_since() excuses that time, up
  /// to the windows' cap. (A second I/O thread for the workers' connections avoids the wait, but cost
  /// a tenth of the tiny-job throughput on 2 cores.)
  core::BusyWindows& own_sends() { return own_sends_; }

  /// The worker to run `job` now: one that has the kernel, a free slot and suits the placement hint,
  /// best by placement_rank() (placement.hpp), then the one idle longest. nullptr if none.
  WorkerRecord* select(const Job& job);
  /// Whether `worker` may take `job` now: a free slot, every kernel, the placement, and the actor's
  /// worker for an actor call.
  bool can_take(const WorkerRecord& worker, const Job& job) const;
  /// Whether any registered worker could ever run them (kernels + placement), free or not.
  bool could_run(const std::vector<std::string>& kernels, Placement placement) const;
  bool any_has_kernel(const std::string& kernel) const;

  bool empty() const { return workers_.empty(); }
  std::size_t size() const { return workers_.size(); }
  const std::map<std::string, WorkerRecord>& workers() const { return workers_; }
  std::map<std::string, WorkerRecord>& workers() { return workers_; }
  std::size_t inflight_jobs() const;

 private:
  std::map<std::string, WorkerRecord> workers_;
  /// Each worker's route -> its record (std::map keeps a record where it is until it is removed).
  struct RouteHash {
    using is_transparent = void;  // looked up by a view of the message's frame: no copy per message
    std::size_t operator()(std::string_view route) const { return std::hash<std::string_view>{}(route); }
  };
  std::unordered_map<std::string, WorkerRecord*, RouteHash, std::equal_to<>> routes_;
  void forget_route(const std::string& route, const WorkerRecord& worker);
  core::BusyWindows own_sends_;  ///< when the broker's I/O thread is busy with its own large sends
};

/// Whether a worker's device kind suits a placement hint at all.
bool placement_allows(Placement placement, const WorkerRecord& worker);

}  // namespace bridge::broker
