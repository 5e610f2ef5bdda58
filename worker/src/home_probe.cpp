#include "bridge/worker/home_probe.hpp"

#include <zmq_addon.hpp>

#include "bridge/core/protocol.hpp"

namespace bridge::worker {

HomeProbe::Answer HomeProbe::poll(const std::string& home, std::chrono::milliseconds every,
                                  std::chrono::steady_clock::time_point now) {
  if (socket_) {
    std::vector<zmq::message_t> reply;
    if (zmq::recv_multipart(*socket_, std::back_inserter(reply), zmq::recv_flags::dontwait)) {
      socket_.reset();
      return Answer::kAlive;
    }
    if (now - asked_ < every) return Answer::kNone;
    socket_.reset();  // unanswered: asked again on a new connection
  }
  if (now - asked_ < every) return Answer::kNone;
  socket_ = std::make_unique<zmq::socket_t>(context_, zmq::socket_type::dealer);
  socket_->set(zmq::sockopt::routing_id, routing_id_);
  socket_->set(zmq::sockopt::linger, 0);
  core::apply_curve_client(*socket_, curve_);
  socket_->connect(home);
  std::array<zmq::message_t, 1> heartbeat{core::protocol::encode(core::protocol::Heartbeat{})};
  (void)zmq::send_multipart(*socket_, heartbeat, zmq::send_flags::dontwait);
  asked_ = now;
  return Answer::kNone;
}

}  // namespace bridge::worker
