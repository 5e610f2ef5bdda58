#pragma once
/// @file A checked workload and its checker, in the manner of Jepsen: clients send jobs whose answers
/// are known and actor calls whose versions must only grow, while a test injects network faults; the
/// history is then checked: every job answered exactly once, every answer right, no actor state
/// gone back, and how long service was degraded (the longest time without any result).

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "bridge/client.hpp"

namespace bridge::testing {

class Workload {
 public:
  struct Report {
    long submitted = 0, ok = 0, failed = 0, duplicated = 0, wrong = 0, regressions = 0;
    std::chrono::milliseconds longest_gap{0};  ///< without any OK result, from start to stop
    std::string first_failure;
    /// Nothing lost (every job answered, each OK), duplicated, wrong or gone back.
    bool clean() const { return failed == 0 && duplicated == 0 && wrong == 0 && regressions == 0 && ok > 0; }
    std::string to_string() const;
  };

  /// `streams` threads of plain jobs and one of calls to the actor `actor_id` ("step" := i), on `client`.
  Workload(Client& client, int streams, std::string actor_id);
  ~Workload();
  /// Stops sending and waits for every answer; the checked history.
  Report stop();

 private:
  void jobs(int stream);
  void actor_calls();
  void answered(bool ok, bool right);

  Client& client_;
  std::string actor_id_;
  std::atomic<bool> stopping_{false};
  std::mutex mutex_;
  Report report_;  // guarded by mutex_
  std::chrono::steady_clock::time_point last_ok_;
  std::vector<std::thread> threads_;
};

}  // namespace bridge::testing
