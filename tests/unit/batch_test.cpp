// Batches (docs/protocol.md, "Batches"): what a writer gathers is what a reader gets back, in order;
// one message goes as it is; a batch never passes its size; a Batch inside a Batch is refused.
#include <gtest/gtest.h>

#include "bridge/core/batch.hpp"
#include "bridge/core/protocol.hpp"

namespace bridge::core {
namespace {

zmq::message_t ping(std::uint64_t id) { return protocol::encode(protocol::Ping{id}); }

std::vector<std::uint64_t> ping_ids(zmq::message_t& frame) {
  const wire::Envelope* envelope = nullptr;
  EXPECT_TRUE(decode_envelope(frame, Limits{}, envelope).is_ok());
  std::vector<std::uint64_t> ids;
  if (envelope == nullptr || envelope->body_as_Batch() == nullptr) return ids;
  for_each_batched(*envelope->body_as_Batch(), [&](zmq::message_t& header) {
    const wire::Envelope* message = nullptr;
    Status s = decode_batched(header, Limits{}, message);
    EXPECT_TRUE(s.is_ok()) << s.to_string();
    if (message != nullptr && message->body_as_Ping() != nullptr) ids.push_back(message->body_as_Ping()->request_id());
  });
  return ids;
}

TEST(Batch, OneMessageGoesAsItIs) {
  BatchWriter writer;
  zmq::message_t alone = ping(7);
  const std::string bytes = alone.to_string();
  writer.add(std::move(alone));
  EXPECT_EQ(writer.size(), 1u);
  zmq::message_t frame = writer.take();
  EXPECT_EQ(frame.to_string(), bytes);
  EXPECT_TRUE(writer.empty());
}

TEST(Batch, SeveralComeBackInTheirOrderAndTheWriterStartsAfresh) {
  BatchWriter writer;
  for (std::uint64_t id = 1; id <= 5; ++id) writer.add(ping(id));
  zmq::message_t frame = writer.take();
  EXPECT_EQ(ping_ids(frame), (std::vector<std::uint64_t>{1, 2, 3, 4, 5}));
  EXPECT_TRUE(writer.empty());
  writer.add(ping(8));
  writer.add(ping(9));
  frame = writer.take();
  EXPECT_EQ(ping_ids(frame), (std::vector<std::uint64_t>{8, 9}));
}

TEST(Batch, ABatchStaysWithinItsSize) {
  constexpr std::size_t kMax = 4096;
  BatchWriter writer(kMax);
  std::size_t added = 0;
  zmq::message_t next = ping(0);
  while (writer.fits(next)) {
    writer.add(std::move(next));
    next = ping(++added);
  }
  EXPECT_GT(added, 10u);
  zmq::message_t frame = writer.take();
  EXPECT_LE(frame.size(), kMax);
  EXPECT_EQ(ping_ids(frame).size(), added);
  // Anything fits an empty writer: a message larger than a batch goes alone.
  zmq::message_t large(kMax * 2);
  EXPECT_TRUE(writer.fits(large));
}

TEST(Batch, ABatchInsideABatchIsRefused) {
  BatchWriter inner;
  inner.add(ping(1));
  inner.add(ping(2));
  BatchWriter outer;
  outer.add(inner.take());
  outer.add(ping(3));
  zmq::message_t frame = outer.take();
  const wire::Envelope* envelope = nullptr;
  ASSERT_TRUE(decode_envelope(frame, Limits{}, envelope).is_ok());
  std::vector<StatusCode> codes;
  for_each_batched(*envelope->body_as_Batch(), [&](zmq::message_t& header) {
    const wire::Envelope* message = nullptr;
    codes.push_back(decode_batched(header, Limits{}, message).code());
  });
  EXPECT_EQ(codes, (std::vector<StatusCode>{StatusCode::kMalformedMessage, StatusCode::kOk}));
}

}  // namespace
}  // namespace bridge::core
