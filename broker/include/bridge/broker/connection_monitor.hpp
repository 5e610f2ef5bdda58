#pragma once
/// @file ConnectionMonitor: a socket's connections and the process's file descriptors, seen from the
/// broker's loop.

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

#include <zmq.hpp>

namespace bridge::broker {

/// Counts the peers connected to one socket (libzmq's monitor: an inproc PAIR the loop polls beside
/// the socket, told of accepts and disconnects only), and watches how many file descriptors the
/// process holds against its limit. At the limit libzmq cannot accept new connections; it retries
/// in silence while new clients time out, so this logs it at once, then every 10 s while it lasts,
/// and its end once. Accept failures themselves are not taken from the monitor: libzmq sends monitor
/// events from its I/O thread and waits when they are not read, and a failing accept repeats in a
/// tight loop, so they would stall the very thread that serves the connected clients.
/// Loop thread only.
class ConnectionMonitor {
 public:
  /// `role` names the socket in log lines ("frontend (clients)"). Must be made before the socket binds.
  ConnectionMonitor(zmq::context_t& context, zmq::socket_t& watched, std::string role);

  /// The socket to poll for ZMQ_POLLIN.
  void* handle() { return events_.handle(); }
  /// Reads every pending event; `on_disconnected` gets the descriptor of each connection that closed
  /// (libzmq reports it before it closes the descriptor, so before the number can be reused).
  void drain(const std::function<void(int fd)>& on_disconnected = {});
  /// Counts the open descriptors and logs a change of state; call regularly (every heartbeat).
  void check_descriptors(std::chrono::steady_clock::time_point now);

  std::int64_t connections() const { return connections_; }
  std::int64_t open_files() const { return open_files_; }
  std::int64_t open_files_limit() const { return limit_; }

 private:
  std::string role_;
  zmq::socket_t events_;
  std::int64_t connections_ = 0;
  std::int64_t open_files_ = 0;
  std::int64_t limit_ = 0;
  bool at_limit_ = false;
  std::chrono::steady_clock::time_point next_log_{};
};

/// Raises this process's soft limit on open files to its hard limit (a broker holds one per client
/// connection); returns a line saying what it did, for the log.
std::string raise_open_files_limit();

}  // namespace bridge::broker
