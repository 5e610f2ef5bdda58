#pragma once
/// @file Liveness between broker and worker when large messages travel. Each side counts the other
/// silent after `liveness` heartbeats without a message. A large message holds up everything behind
/// it on the connection (one TCP stream, and CURVE encrypts and decrypts whole frames), for as long
/// as the link takes to move it, so its sender announces it with a Heartbeat that carries its size
/// and the receiver waits that transfer time longer (docs/protocol.md, "Heartbeats").

#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <utility>

#include <zmq.hpp>

#include "bridge/core/wire.hpp"

namespace bridge::core {

/// Messages of at least this many bytes are announced; smaller ones cross any link in well under a
/// heartbeat, and tiny jobs pay for no extra message.
inline constexpr std::uint64_t kAnnouncedMessageBytes = 1ull << 20;

/// The default slowest rate at which a link is expected to move a large message (CURVE included,
/// on a loaded machine): `link_floor_mib_s` in broker.yaml and worker.yaml.
inline constexpr std::uint32_t kDefaultLinkFloorMibS = 16;

/// Bytes of all frames of a message.
std::uint64_t message_bytes(const Frames& frames);

/// The Heartbeat to send just before a message of `bytes`, or nothing when it is too small to announce.
std::optional<zmq::message_t> announce_message(std::uint64_t bytes, std::uint32_t inflight);

/// How much longer than its liveness a peer that announced `incoming_bytes` is waited for. The
/// announcement counts for at most the largest message `limits` let through (max_job_bytes plus a
/// header), so a peer cannot buy itself more than that message's time by announcing more.
std::chrono::milliseconds transfer_grace(std::uint64_t incoming_bytes, std::uint32_t link_floor_mib_s,
                                         const Limits& limits);

/// When this process's own large sends keep its one ZeroMQ I/O thread busy (CURVE encrypts whole
/// frames), and the peer's messages wait to be read: time inside those windows is not the peer's
/// silence. The broker keeps one for every worker, a worker one for its broker (whose heartbeats also
/// wait while the broker decrypts what the worker sent). Used by one thread.
class BusyWindows {
 public:
  using Clock = std::chrono::steady_clock;

  /// The link's floor rate and the limits: note_send() counts a send at the floor, and the cap is
  /// the transfer time of the largest message the limits let through.
  void configure(std::uint32_t link_floor_mib_s, const Limits& limits);
  /// A send of `bytes` made at `now`, counted at the configured floor; one too small to announce is
  /// nothing (see kAnnouncedMessageBytes).
  void note_send(Clock::time_point now, std::uint64_t bytes);
  /// A send of `transfer_time` made at `now`. Sends queue behind each other on the one I/O thread:
  /// one made while it is busy starts when the one before ends.
  void note(Clock::time_point now, std::chrono::milliseconds transfer_time);
  /// How long between `from` and `to` the I/O thread was busy with these sends.
  Clock::duration busy_between(Clock::time_point from, Clock::time_point to) const;
  /// busy_between(), at most the cap: the transfer time of the largest message the limits let
  /// through. Without it, a process that always has a large send going would never count a dead
  /// peer dead.
  Clock::duration excused(Clock::time_point from, Clock::time_point to) const;
  void set_cap(std::chrono::milliseconds cap) { cap_ = cap; }
  std::chrono::milliseconds cap() const { return cap_; }

 private:
  std::deque<std::pair<Clock::time_point, Clock::time_point>> windows_;  // disjoint, oldest first; the latest 256
  std::chrono::milliseconds cap_{std::chrono::seconds(64)};            // 1 GiB at 16 MiB/s
  std::uint32_t link_floor_mib_s_ = kDefaultLinkFloorMibS;
  Limits limits_;
};

}  // namespace bridge::core
