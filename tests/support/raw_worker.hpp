#pragma once
// A worker written by hand on a raw DEALER socket, for tests that need to say exactly what a worker
// says (or fails to say) to the broker.
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include <zmq.hpp>

#include "bridge/core/wire.hpp"
#include "fleet.hpp"

namespace bridge::testing {

struct RawConnection {
  std::string route;
  std::uint32_t number = 0;
  std::vector<std::uint64_t> running;
  std::uint32_t slots = 1;
};

/// A raw DEALER that says hello as worker `id` with `connection.slots` slots for `sleep`, heartbeat
/// `heartbeat_ms`.
zmq::socket_t raw_worker(zmq::context_t& context, const Fleet& fleet, const std::string& id, std::uint32_t heartbeat_ms,
                         const RawConnection& connection = {});

/// The next message of type `type` on `socket` within `wait`, others skipped: its dispatch id (a
/// Dispatch's or a Cancel's), or 1 for another type; 0 if none came.
std::uint64_t next_message(zmq::socket_t& socket, wire::Body type, std::chrono::milliseconds wait);
std::uint64_t next_dispatch(zmq::socket_t& socket, std::chrono::milliseconds wait);

/// The header of an OK result for dispatch `dispatch_id` (a `sleep`: no outputs).
zmq::message_t ok_result(std::uint64_t dispatch_id);
/// Sends it.
void answer_ok(zmq::socket_t& socket, std::uint64_t dispatch_id);

}  // namespace bridge::testing
