#include "bridge/broker/zap_handler.hpp"

#include <spdlog/spdlog.h>
#include <zmq_addon.hpp>

namespace bridge::broker {

ZapHandler::ZapHandler(zmq::context_t& context, Decide decide)
    : socket_(context, zmq::socket_type::rep), decide_(std::move(decide)) {
  socket_.set(zmq::sockopt::linger, 0);
  socket_.bind("inproc://zeromq.zap.01");
}

void ZapHandler::serve() {
  while (true) {
    std::vector<zmq::message_t> frames;
    if (!zmq::recv_multipart(socket_, std::back_inserter(frames), zmq::recv_flags::dontwait)) return;
    // RFC 27: version, request id, domain, address, identity, mechanism, credentials...
    ZapAnswer answer{"500", "malformed ZAP request", ""};
    std::string version, request_id;
    if (frames.size() >= 6) {
      version = frames[0].to_string();
      request_id = frames[1].to_string();
      ZapRequest request{frames[2].to_string(), frames[3].to_string(), frames[5].to_string(), {}};
      if (request.mechanism == "CURVE" && frames.size() >= 7 && frames[6].size() == 32) {
        char z85[41] = {};
        zmq_z85_encode(z85, static_cast<const std::uint8_t*>(frames[6].data()), 32);
        request.public_key = z85;
      }
      answer = version == "1.0" ? decide_(request) : ZapAnswer{"500", "unsupported ZAP version", ""};
    }
    std::array<zmq::const_buffer, 6> reply{zmq::buffer(std::string_view("1.0")), zmq::buffer(request_id),
                                           zmq::buffer(answer.status_code), zmq::buffer(answer.status_text),
                                           zmq::buffer(answer.user_id), zmq::const_buffer()};
    try {
      zmq::send_multipart(socket_, reply, zmq::send_flags::dontwait);
    } catch (const zmq::error_t& e) {
      spdlog::error("ZAP handler: cannot answer libzmq: {}", e.what());
    }
  }
}

}  // namespace bridge::broker
