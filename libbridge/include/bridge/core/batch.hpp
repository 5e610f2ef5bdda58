#pragma once
/// @file Batches: several one-frame messages for one peer in one frame (docs/protocol.md, "Batches").
/// A peer that produced several messages within one wake-up (results that finished together) pays
/// ZeroMQ's and CURVE's cost per message, and the receiver's wake-up, once for all of them.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

#include <zmq.hpp>

#include "bridge/core/wire.hpp"

namespace bridge::core {

/// The largest batch frame the fleet's writers make: inside the default max_header_bytes (64 KiB),
/// which is what every reader takes a batch's frame to be bounded by.
inline constexpr std::size_t kMaxBatchBytes = 60 * 1024;
/// The most messages a Batch may hold; a reader refuses more, whole. It bounds what one frame makes
/// a receiver do: a Batch of a thousand Pings costs the sender one frame and the broker a thousand
/// answers. Under load the fleet's batches hold a few to a few dozen messages.
inline constexpr std::size_t kMaxBatchMessages = 64;

/// Gathers one-frame messages in the order they are added and hands them over as one frame: the
/// message itself when there is one (no batch is built for it), else an Envelope holding a Batch.
class BatchWriter {
 public:
  explicit BatchWriter(std::size_t max_bytes = kMaxBatchBytes);

  /// Whether `header` may join what is gathered: the batch would stay within max_bytes and
  /// kMaxBatchMessages. Anything fits an empty writer (it is sent as it is).
  bool fits(const zmq::message_t& header) const;
  void add(zmq::message_t header);
  bool empty() const { return count_ == 0; }
  std::size_t size() const { return count_; }
  /// The gathered messages as one frame; the writer is empty afterwards.
  zmq::message_t take();

 private:
  void append(const zmq::message_t& header);

  std::size_t max_bytes_;
  std::size_t count_ = 0;
  zmq::message_t first_;  // kept as it is until a second message comes
  flatbuffers::FlatBufferBuilder fbb_;
  std::vector<flatbuffers::Offset<wire::BatchedMessage>> messages_;
};

/// Hands each message of `batch` to `on_message` as a header frame of its own (a copy, 8-byte aligned
/// once decode_batched() has read it). The frames are not checked here: decode each with decode_batched().
void for_each_batched(const wire::Batch& batch, const std::function<void(zmq::message_t&)>& on_message);

/// The messages a received header stands for, as a read budget counts them: a Batch's (at most
/// kMaxBatchMessages: more are refused unread), 1 for anything else.
int messages_in(const wire::Envelope* envelope);

/// decode_envelope() for a message that came inside a Batch: a Batch there is refused.
Status decode_batched(zmq::message_t& frame, const Limits& limits, const wire::Envelope*& out);

/// A received message, its header frames[header] decoded as `envelope`, to `on_message`: as it is
/// when it is no Batch; else each message of the Batch in turn, as frames of its own (those before
/// the header, a routing id, copied in front). A Batch with payload frames or over kMaxBatchMessages
/// goes to `on_refused` whole (if set); a message of one that decode_batched() refuses goes there
/// alone, its status naming its place in the Batch, and the others are still handled.
using OnMessage = std::function<void(const wire::Envelope&, Frames&)>;
using OnRefused = std::function<void(const Status&, const zmq::message_t& header)>;
void each_message(Frames& frames, std::size_t header, const wire::Envelope& envelope, const Limits& limits,
                  const OnMessage& on_message, const OnRefused& on_refused = {});

}  // namespace bridge::core
