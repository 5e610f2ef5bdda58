#include "bridge/core/batch.hpp"

#include <algorithm>
#include <string>
#include <utility>

namespace bridge::core {

namespace {
// What a message adds to a batch's frame besides its bytes: its table, vector length, offsets and
// up to 7 bytes of alignment; rounded up.
constexpr std::size_t kPerMessageBytes = 32;
// The Envelope and Batch tables around the messages, and the file identifier; rounded up.
constexpr std::size_t kFixedBytes = 64;
}  // namespace

BatchWriter::BatchWriter(std::size_t max_bytes) : max_bytes_(max_bytes), fbb_(4096) {}

bool BatchWriter::fits(const zmq::message_t& header) const {
  if (count_ == 0) return true;
  if (count_ >= kMaxBatchMessages) return false;
  // Built so far, and the vector of the messages' offsets that take() adds.
  const std::size_t gathered = count_ == 1 ? first_.size() + kPerMessageBytes : fbb_.GetSize() + 4 * count_;
  return kFixedBytes + gathered + header.size() + kPerMessageBytes <= max_bytes_;
}

void BatchWriter::add(zmq::message_t header) {
  if (count_ == 0) {
    first_ = std::move(header);
  } else {
    if (count_ == 1) append(first_);
    append(header);
  }
  ++count_;
}

void BatchWriter::append(const zmq::message_t& header) {
  // Aligned as a header frame is, so that a reader could use it in place.
  fbb_.ForceVectorAlignment(header.size(), 1, 8);
  auto bytes = fbb_.CreateVector(static_cast<const std::uint8_t*>(header.data()), header.size());
  messages_.push_back(wire::CreateBatchedMessage(fbb_, bytes));
}

zmq::message_t BatchWriter::take() {
  const std::size_t count = std::exchange(count_, 0);
  if (count == 1) return std::move(first_);
  if (count == 0) return {};
  auto batch = wire::CreateBatch(fbb_, fbb_.CreateVector(messages_));
  zmq::message_t frame = finish_envelope(fbb_, wire::Body::Batch, batch.Union());
  messages_.clear();
  fbb_.Clear();
  first_ = zmq::message_t();
  return frame;
}

void for_each_batched(const wire::Batch& batch, const std::function<void(zmq::message_t&)>& on_message) {
  for (const wire::BatchedMessage* message : *batch.messages()) {
    const auto* bytes = message->header();  // required: the verifier saw it present
    zmq::message_t frame(bytes->data(), bytes->size());
    on_message(frame);
  }
}

int messages_in(const wire::Envelope* envelope) {
  const wire::Batch* batch = envelope != nullptr ? envelope->body_as_Batch() : nullptr;
  if (batch == nullptr) return 1;
  return static_cast<int>(std::clamp<std::size_t>(batch->messages()->size(), 1, kMaxBatchMessages));
}

Status decode_batched(zmq::message_t& frame, const Limits& limits, const wire::Envelope*& out) {
  Status status = decode_envelope(frame, limits, out);
  if (status.is_ok() && out->body_type() == wire::Body::Batch) {
    out = nullptr;
    return {StatusCode::kMalformedMessage, "a Batch inside a Batch; a batch holds one-frame messages other than Batch"};
  }
  return status;
}

void each_message(Frames& frames, std::size_t header, const wire::Envelope& envelope, const Limits& limits,
                  const OnMessage& on_message, const OnRefused& on_refused) {
  const auto* batch = envelope.body_as_Batch();
  if (batch == nullptr) return on_message(envelope, frames);
  Status refused;
  if (frames.size() != header + 1)
    refused = {StatusCode::kMalformedMessage, "a Batch came with " + std::to_string(frames.size() - header - 1) +
                                                  " payload frames; it has none, and none of its messages was read"};
  else if (batch->messages()->size() > kMaxBatchMessages)
    refused = {StatusCode::kMalformedMessage, "a Batch of " + std::to_string(batch->messages()->size()) +
                                                  " messages; it holds at most " + std::to_string(kMaxBatchMessages) +
                                                  ", and none of its messages was read: send smaller ones"};
  if (!refused.is_ok()) {
    if (on_refused) on_refused(refused, frames[header]);
    return;
  }
  std::size_t index = 0;
  for_each_batched(*batch, [&](zmq::message_t& message) {
    Frames one;
    one.reserve(header + 1);
    for (std::size_t i = 0; i < header; ++i) one.emplace_back(frames[i].data(), frames[i].size());
    one.push_back(std::move(message));
    const wire::Envelope* decoded = nullptr;
    ++index;
    if (Status bad = decode_batched(one[header], limits, decoded); !bad.is_ok()) {
      // Which one, since a refusal that cannot read the message cannot name its job.
      if (on_refused)
        on_refused({bad.code(), "message " + std::to_string(index) + " of " +
                                    std::to_string(batch->messages()->size()) + " in a Batch: " + bad.message()},
                   one[header]);
      return;
    }
    on_message(*decoded, one);
  });
}

}  // namespace bridge::core
