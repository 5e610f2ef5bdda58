#pragma once
/// @file Liveness between broker and worker when large messages travel. Each side counts the other
/// silent after `liveness` heartbeats without a message. A large message holds up everything behind
/// it on the connection (one TCP stream, and CURVE encrypts and decrypts whole frames), for as long
/// as the link takes to move it, so its sender announces it with a Heartbeat that carries its size
/// and the receiver waits that transfer time longer (docs/protocol.md, "Heartbeats").

#include <chrono>
#include <cstdint>
#include <optional>

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

}  // namespace bridge::core
