#pragma once
/// @file Dynamic batching: compatible small jobs waiting at the same time share one kernel launch.

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "bridge/worker/backend.hpp"

namespace bridge::worker {

struct BatchOptions {
  /// Most jobs in one launch; 1 turns batching off.
  std::uint32_t max_batch = 8;
  /// How long a job may wait for company. 0: only jobs that arrived together (in one read of the
  /// socket) are batched, which adds no latency.
  std::uint32_t max_delay_us = 0;
};

/// Groups planned executions by compatibility: same tenant, same kernel (batchable, see KernelSpec),
/// same params, same input dtypes and shapes, single step, not an actor call. Not thread-safe: the
/// worker's socket thread only.
class DynamicBatcher {
 public:
  using Clock = std::chrono::steady_clock;
  using Group = std::vector<std::unique_ptr<Execution>>;

  explicit DynamicBatcher(BatchOptions options) : options_(options) {}

  /// Whether `execution` may wait here for company at all.
  bool eligible(const Execution& execution) const;
  /// Adds an eligible execution (outputs not yet allocated). Returns its group if that is now full.
  std::optional<Group> add(std::unique_ptr<Execution> execution, Clock::time_point now);
  /// Removes and returns the groups whose delay has passed at `now`.
  std::vector<Group> take_due(Clock::time_point now);
  /// When the oldest waiting group falls due; nullopt when none waits.
  std::optional<Clock::time_point> next_due() const;
  std::size_t waiting() const { return waiting_; }

 private:
  struct Pending {
    Group members;
    Clock::time_point due;
  };
  BatchOptions options_;
  std::map<std::string, Pending> pending_;  // by compatibility key
  std::size_t waiting_ = 0;
};

/// One execution that runs every member with their inputs stacked along a new leading axis. Cheap:
/// it copies no bytes; the stacking happens in prepare_execution() on the backend's thread
/// (stack_inputs()). Members must be compatible (same group) and planned; a group of one comes
/// back as that job.
std::unique_ptr<Execution> stack_batch(DynamicBatcher::Group members);

/// Fills a stacked execution's inputs from its members' (one copy); does nothing for an execution
/// without members or with inputs already.
void stack_inputs(Execution& combined);

/// The members of a finished stacked execution, each with its slice of the outputs (sharing the
/// stacked bytes, no copy), the status, timings and batch size. An execution without members is
/// returned alone.
DynamicBatcher::Group unstack_batch(std::unique_ptr<Execution> combined);

}  // namespace bridge::worker
