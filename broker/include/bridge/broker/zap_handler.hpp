#pragma once
/// @file ZapHandler: the broker's ZeroMQ authentication handler (ZAP, RFC 27), which decides, for each
/// connection's CURVE handshake, whether it may go on and under which user id.

#include <functional>
#include <string>

#include <zmq.hpp>

namespace bridge::broker {

/// The parts of a ZAP request a decision needs.
struct ZapRequest {
  std::string domain;      ///< the zap_domain of the broker socket connected to: "clients" or "workers"
  std::string address;     ///< the peer's IP address
  std::string mechanism;   ///< "CURVE", or "NULL" for a peer that offered no keys
  std::string public_key;  ///< the peer's CURVE public key, Z85 (empty unless CURVE)
};

/// The answer: status "200" lets the connection on, with `user_id` on each of its messages
/// (zmq_msg_gets "User-Id"); "400" refuses it (libzmq closes the connection after telling the peer).
struct ZapAnswer {
  std::string status_code;
  std::string status_text;
  std::string user_id;
};

/// Binds the ZAP endpoint (inproc://zeromq.zap.01) of the broker's context: it must exist before
/// any socket of that context binds with CURVE, or libzmq lets connections through unchecked.
/// The loop polls handle() and calls serve(), which answers every pending request with `decide`:
/// libzmq holds each handshake until its answer, so the broker's tables decide without locks.
/// Loop thread only.
class ZapHandler {
 public:
  using Decide = std::function<ZapAnswer(const ZapRequest&)>;
  ZapHandler(zmq::context_t& context, Decide decide);

  void* handle() { return socket_.handle(); }
  void serve();

  static constexpr const char* kClientsDomain = "clients";
  static constexpr const char* kWorkersDomain = "workers";

 private:
  zmq::socket_t socket_;
  Decide decide_;
};

}  // namespace bridge::broker
