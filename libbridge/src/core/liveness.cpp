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

void BusyWindows::configure(std::uint32_t link_floor_mib_s, const Limits& limits) {
  link_floor_mib_s_ = link_floor_mib_s;
  limits_ = limits;
  cap_ = transfer_grace(limits.max_job_bytes + limits.max_header_bytes, link_floor_mib_s, limits);
}

void BusyWindows::note_send(Clock::time_point now, std::uint64_t bytes) {
  if (bytes >= kAnnouncedMessageBytes) note(now, transfer_grace(bytes, link_floor_mib_s_, limits_));
}

void BusyWindows::note(Clock::time_point now, std::chrono::milliseconds transfer_time) {
  if (!windows_.empty() && now <= windows_.back().second) {
    windows_.back().second += transfer_time;
    return;
  }
  windows_.emplace_back(now, now + transfer_time);
  if (windows_.size() > 256) windows_.pop_front();
}

BusyWindows::Clock::duration BusyWindows::busy_between(Clock::time_point from, Clock::time_point to) const {
  Clock::duration busy{0};
  for (const auto& [start, end] : windows_)
    if (end > from && start < to) busy += std::min(end, to) - std::max(start, from);
  return busy;
}

BusyWindows::Clock::duration BusyWindows::excused(Clock::time_point from, Clock::time_point to) const {
  return std::min<Clock::duration>(busy_between(from, to), cap_);
}

}  // namespace bridge::core
