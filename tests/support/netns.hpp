#pragma once
/// @file The network namespace the partition tests run in, and the faults they put on its loopback:
/// a test binary re-executes itself in a new user and network namespace (`unshare -rn`), where it
/// is root and 127.0.0.1 is its own, so that its iptables rules and qdiscs touch nothing outside.

#include <string>

namespace bridge::testing::netns {

/// Called first in main(): re-executes the program in a new namespace (loopback up). Returns only
/// when it cannot (or already runs in one): then with why, or "" when already inside.
std::string enter(int argc, char** argv);
/// Empty inside a namespace; otherwise why not (what enter() returned), for GTEST_SKIP.
const std::string& unavailable();

/// Drops TCP packets to and from `port` on the loopback with probability `p` (1: the link is cut)
/// until destroyed. iptables rules in the namespace.
class Drop {
 public:
  explicit Drop(int port, double p = 1.0);
  ~Drop();
  Drop(const Drop&) = delete;
  Drop& operator=(const Drop&) = delete;

 private:
  std::string rules_;  // the match, as given to iptables -A / -D
};

/// Delays every packet on the loopback by `ms` (each link: client, worker, Redis) until destroyed.
/// Needs the kernel's netem qdisc: available() says whether it is there.
class Delay {
 public:
  explicit Delay(int ms);
  ~Delay();
  Delay(const Delay&) = delete;
  Delay& operator=(const Delay&) = delete;
  static std::string unavailable();  ///< why not ("" when netem works)
};

}  // namespace bridge::testing::netns
