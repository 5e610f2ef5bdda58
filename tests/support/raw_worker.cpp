#include "raw_worker.hpp"

#include <algorithm>

#include <zmq_addon.hpp>

#include "bridge/core/job_codec.hpp"

namespace bridge::testing {

zmq::socket_t raw_worker(zmq::context_t& context, const Fleet& fleet, const std::string& id, std::uint32_t heartbeat_ms,
                         const RawConnection& connection) {
  zmq::socket_t socket(context, zmq::socket_type::dealer);
  socket.set(zmq::sockopt::linger, 0);
  socket.set(zmq::sockopt::routing_id, connection.route.empty() ? id : connection.route);
  fleet.secure_worker_socket(socket);
  socket.connect(fleet.backend());
  flatbuffers::FlatBufferBuilder fbb;
  std::vector<flatbuffers::Offset<flatbuffers::String>> kernels{fbb.CreateString("sleep")};
  auto hello = wire::CreateWorkerHello(fbb, fbb.CreateString(id), 1, core::add_device_info(fbb, {}),
                                       fbb.CreateVector(kernels), connection.slots, heartbeat_ms, 0, connection.number,
                                       fbb.CreateVector(connection.running));
  core::Frames frames;
  frames.push_back(core::finish_envelope(fbb, wire::Body::WorkerHello, hello.Union()));
  zmq::send_multipart(socket, frames);
  return socket;
}

std::uint64_t next_message(zmq::socket_t& socket, wire::Body type, std::chrono::milliseconds wait) {
  zmq::pollitem_t item{socket.handle(), 0, ZMQ_POLLIN, 0};
  const auto until = std::chrono::steady_clock::now() + wait;
  while (zmq::poll(&item, 1,
                   std::chrono::duration_cast<std::chrono::milliseconds>(std::max(
                       until - std::chrono::steady_clock::now(), std::chrono::steady_clock::duration::zero()))) > 0) {
    core::Frames frames;
    (void)zmq::recv_multipart(socket, std::back_inserter(frames));
    const wire::Envelope* envelope = nullptr;
    if (!core::decode_envelope(frames[0], core::Limits{}, envelope).is_ok() || envelope->body_type() != type) continue;
    if (type == wire::Body::Dispatch) return envelope->body_as_Dispatch()->dispatch_id();
    if (type == wire::Body::Cancel) return envelope->body_as_Cancel()->dispatch_id();
    return 1;
  }
  return 0;
}

std::uint64_t next_dispatch(zmq::socket_t& socket, std::chrono::milliseconds wait) {
  return next_message(socket, wire::Body::Dispatch, wait);
}

zmq::message_t ok_result(std::uint64_t dispatch_id) {
  flatbuffers::FlatBufferBuilder fbb;
  fbb.ForceDefaults(true);  // the broker rewrites job_id and timings in place
  wire::Timings timings(0, 0, 0);
  auto result = wire::CreateJobResult(fbb, dispatch_id, wire::StatusCode::OK, 0,
                                      fbb.CreateVector(std::vector<flatbuffers::Offset<wire::TensorDesc>>{}), 0,
                                      wire::DeviceKind::Cpu, 0, 0, &timings);
  return core::finish_envelope(fbb, wire::Body::JobResult, result.Union());
}

void answer_ok(zmq::socket_t& socket, std::uint64_t dispatch_id) {
  core::Frames frames;
  frames.push_back(ok_result(dispatch_id));
  zmq::send_multipart(socket, frames);
}

}  // namespace bridge::testing
