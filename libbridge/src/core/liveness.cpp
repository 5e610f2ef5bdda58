#include "bridge/core/liveness.hpp"

#include <algorithm>

#include "bridge/core/protocol.hpp"

namespace bridge::core {

std::uint64_t message_bytes(const Frames& frames) {
  std::uint64_t bytes = 0;
  for (const auto& frame : frames) bytes += frame.size();
  return bytes;
}

std::optional<zmq::message_t> announce_message(std::uint64_t bytes, std::uint32_t inflight) {
  if (bytes < kAnnouncedMessageBytes) return std::nullopt;
  return protocol::encode(protocol::Heartbeat{.inflight = inflight, .incoming_bytes = bytes});
}

std::chrono::milliseconds transfer_grace(std::uint64_t incoming_bytes, std::uint32_t link_floor_mib_s,
                                         const Limits& limits) {
  if (incoming_bytes == 0) return std::chrono::milliseconds(0);
  incoming_bytes = std::min(incoming_bytes, limits.max_job_bytes + limits.max_header_bytes);
  const std::uint64_t per_ms = std::max<std::uint64_t>(1, (std::uint64_t{link_floor_mib_s} << 20) / 1000);
  return std::chrono::milliseconds(incoming_bytes / per_ms + 1);
}

}  // namespace bridge::core
