#pragma once
/// @file HandshakeMonitor: what became of a connecting socket's CURVE handshakes, so that a refused
/// key or a security mismatch is reported with what to fix instead of as silence.

#include <cstdint>
#include <functional>
#include <string>

#include <zmq.hpp>

namespace bridge::core {

/// libzmq's socket monitor for one socket, reduced to handshake outcomes. Owned by the thread that
/// owns the socket; poll handle() for ZMQ_POLLIN, then drain(). Make it before the socket connects.
class HandshakeMonitor {
 public:
  HandshakeMonitor(zmq::context_t& context, zmq::socket_t& socket);

  void* handle() { return events_.handle(); }
  /// Calls `on_succeeded` for each handshake that completed and `on_failed(why)` for each refused
  /// or failed one, `why` saying what to fix; `on_disconnected` (if given) for each established
  /// connection that closed. `curve`: whether this side uses CURVE; `peer`: what the key is listed
  /// in on the broker ("tenants.yaml", "workers_file").
  void drain(bool curve, const std::string& listed_in, const std::function<void()>& on_succeeded,
             const std::function<void(const std::string& why)>& on_failed,
             const std::function<void()>& on_disconnected = {});

 private:
  static constexpr int kConnectionFailures = 3;  ///< closed mid-handshake this often in a row: report it
  zmq::socket_t events_;
  int connection_failures_ = 0;
};

}  // namespace bridge::core
