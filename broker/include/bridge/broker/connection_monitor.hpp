#pragma once
/// @file ConnectionMonitor: what libzmq does with a socket's connections, seen from the broker's loop.

#include <chrono>
#include <cstdint>
#include <string>

#include <zmq.hpp>

namespace bridge::broker {

/// Watches one socket through libzmq's monitor (an inproc PAIR the loop polls beside the socket):
/// counts the peers connected, and logs accepts that fail (the process is out of file descriptors,
/// say), which libzmq would otherwise only retry in silence while new clients time out. A failure
/// is logged at once, then at most every 10 s with the count since, and its end once no accept has
/// failed for a second (libzmq retries a failing accept in a tight loop, so failures come in floods).
/// Loop thread only.
class ConnectionMonitor {
 public:
  /// `role` names the socket in log lines ("frontend (clients)"). Must be made before the socket binds.
  ConnectionMonitor(zmq::context_t& context, zmq::socket_t& watched, std::string role);

  /// The socket to poll for ZMQ_POLLIN.
  void* handle() { return events_.handle(); }
  /// Reads every pending event.
  void drain(std::chrono::steady_clock::time_point now);
  /// Logs the end of a spell of failures; call regularly.
  void tick(std::chrono::steady_clock::time_point now);

  std::int64_t connections() const { return connections_; }
  std::uint64_t failed_accepts() const { return failed_accepts_; }

 private:
  std::string role_;
  zmq::socket_t events_;
  std::int64_t connections_ = 0;
  std::uint64_t failed_accepts_ = 0;
  std::uint64_t failed_since_log_ = 0;
  int failing_errno_ = 0;  ///< 0 while accepts succeed
  std::chrono::steady_clock::time_point next_log_{};
  std::chrono::steady_clock::time_point last_failure_{};
};

/// Raises this process's soft limit on open files to its hard limit (a broker holds one per client
/// connection); returns a line saying what it did, for the log.
std::string raise_open_files_limit();

}  // namespace bridge::broker
