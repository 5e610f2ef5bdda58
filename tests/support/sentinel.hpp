#pragma once
// Test support: Redis behind Sentinel on 127.0.0.1 — a master, two replicas and three sentinels
// (Debian's redis-server, the sentinels as `redis-server CONF --sentinel`), torn down by the destructor.

#include <csignal>
#include <memory>
#include <string>
#include <vector>

#include "fleet.hpp"

namespace bridge::testing {

class SentinelGroup {
 public:
  static constexpr const char* kMaster = "fleet";

  /// Starts the master, two replicas of it, and three sentinels watching it (quorum 2, down after
  /// 1 s); returns once both replicas are in sync and the sentinels know them.
  explicit SentinelGroup(const TempDir& dir);
  ~SentinelGroup();

  /// "sentinel://127.0.0.1:P1,...,127.0.0.1:P3/fleet/0", for a broker's `redis`.
  std::string url() const;
  /// The master's port as the sentinels say now (0 if they do not answer).
  int master_port() const;
  /// The server on `port`.
  RedisServer& server(int port);
  /// Kills the master (SIGKILL; SIGSTOP freezes it instead: its connections stay open, and nothing
  /// answers on them) and waits until the sentinels have promoted a replica, and it says it is the
  /// master. False if not within `timeout`.
  bool kill_master_and_wait_for_failover(std::chrono::milliseconds timeout, int signo = SIGKILL);
  std::string logs() const;

 private:
  const TempDir& dir_;
  std::vector<std::unique_ptr<RedisServer>> servers_;  ///< the first was the master at the start
  std::vector<int> sentinel_ports_;
  std::vector<std::unique_ptr<Process>> sentinels_;
  std::vector<std::string> log_files_;
};

}  // namespace bridge::testing
