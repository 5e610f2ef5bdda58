#include "bridge/core/handshake_monitor.hpp"

#include <atomic>
#include <cstring>
#include <vector>

#include <zmq_addon.hpp>

namespace bridge::core {

HandshakeMonitor::HandshakeMonitor(zmq::context_t& context, zmq::socket_t& socket)
    : events_(context, zmq::socket_type::pair) {
  static std::atomic<std::uint64_t> next{0};
  const std::string endpoint = "inproc://gpubridge-handshakes-" + std::to_string(next.fetch_add(1));
  if (zmq_socket_monitor(socket.handle(), endpoint.c_str(),
                         ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH |
                             ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL |
                             ZMQ_EVENT_DISCONNECTED) != 0)
    throw zmq::error_t();
  events_.set(zmq::sockopt::linger, 0);
  events_.connect(endpoint);
}

void HandshakeMonitor::drain(bool curve, const std::string& listed_in, const std::function<void()>& on_succeeded,
                             const std::function<void(const std::string& why)>& on_failed,
                             const std::function<void()>& on_disconnected) {
  while (true) {
    std::vector<zmq::message_t> event;  // [uint16 event][uint32 value], then the endpoint
    if (!zmq::recv_multipart(events_, std::back_inserter(event), zmq::recv_flags::dontwait)) return;
    if (event.empty() || event[0].size() < 6) continue;
    std::uint16_t kind = 0;
    std::uint32_t value = 0;
    std::memcpy(&kind, event[0].data(), sizeof kind);
    std::memcpy(&value, static_cast<const char*>(event[0].data()) + sizeof kind, sizeof value);
    if (kind == ZMQ_EVENT_DISCONNECTED) {
      if (on_disconnected) on_disconnected();
    } else if (kind == ZMQ_EVENT_HANDSHAKE_SUCCEEDED) {
      connection_failures_ = 0;
      on_succeeded();
    } else if (kind == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL && ++connection_failures_ < kConnectionFailures) {
      // The connection closed mid-handshake: a broker that died or restarted then looks the same as
      // one that cannot decrypt this side's hello (a wrong broker key). Only a run of them says so.
      continue;
    } else if (kind == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) {
      on_failed("the broker refused this key (status " + std::to_string(value) +
                "): it is not listed in the broker's " + listed_in +
                ", or was removed; ask the operator to list the public key (the .pub beside key_file)");
    } else if (!curve) {
      on_failed("the broker requires CURVE keys: set key_file and broker_key_file (docs/security.md)");
    } else {
      on_failed(
          "the CURVE handshake with the broker failed: broker_key_file must be the broker's own public key "
          "(its .pub), and the broker must run with security: curve");
    }
  }
}

}  // namespace bridge::core
