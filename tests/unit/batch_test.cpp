// Batches (docs/protocol.md, "Batches"): what a writer gathers is what a reader gets back, in order;
// one message goes as it is; a batch never passes its size; a Batch inside a Batch is refused; the
// client gathers only job requests of one frame, and says which it could not send.
#include <gtest/gtest.h>

#include "bridge/core/batch.hpp"
#include "bridge/core/job_codec.hpp"
#include "bridge/core/protocol.hpp"
#include "bridge/core/request_batches.hpp"

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

TEST(Batch, ABatchHoldsAtMostItsCountOfMessages) {
  BatchWriter writer;
  for (std::uint64_t i = 0; i < kMaxBatchMessages; ++i) {
    ASSERT_TRUE(writer.fits(ping(i)));
    writer.add(ping(i));
  }
  EXPECT_FALSE(writer.fits(ping(99)));
  zmq::message_t frame = writer.take();
  EXPECT_EQ(ping_ids(frame).size(), kMaxBatchMessages);
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

TEST(RequestBatches, GathersJobRequestsOnlyWhileBegunAndSaysWhichCouldNotBeSent) {
  RequestBatches batches;
  Frames job = encode_request({.kernel = "passthrough"}, 11, "default", std::chrono::seconds(1));
  EXPECT_FALSE(batches.offer(job)) << "gathered before begin()";
  batches.begin(true);
  for (std::uint64_t id : {21, 22, 23}) {
    Frames request = encode_request({.kernel = "passthrough"}, id, "default", std::chrono::seconds(1));
    EXPECT_TRUE(batches.offer(request));
  }
  Frames ping_message;
  ping_message.push_back(ping(5));
  EXPECT_FALSE(batches.offer(ping_message)) << "only job requests are gathered";
  Frames with_frame = encode_request({.kernel = "passthrough", .inputs = {Tensor::vector<float>({1, 2})}}, 24,
                                     "default", std::chrono::seconds(1));
  EXPECT_FALSE(batches.offer(with_frame)) << "a request with payload frames was gathered";

  // A DEALER with no peer takes nothing: every gathered job is said unsent.
  zmq::context_t context;
  zmq::socket_t nowhere(context, zmq::socket_type::dealer);
  EXPECT_EQ(batches.flush(nowhere), (std::vector<std::uint64_t>{21, 22, 23}));
  EXPECT_TRUE(batches.empty());
  Frames after = encode_request({.kernel = "passthrough"}, 25, "default", std::chrono::seconds(1));
  EXPECT_FALSE(batches.offer(after)) << "still gathering after flush()";

  // To a peer: one message, the jobs in their order.
  zmq::socket_t reader(context, zmq::socket_type::pair);
  zmq::socket_t writer(context, zmq::socket_type::pair);
  reader.bind("inproc://request-batches");
  writer.connect("inproc://request-batches");
  batches.begin(true);
  for (std::uint64_t id : {31, 32}) {
    Frames request = encode_request({.kernel = "passthrough"}, id, "default", std::chrono::seconds(1));
    ASSERT_TRUE(batches.offer(request));
  }
  EXPECT_TRUE(batches.flush(writer).empty());
  zmq::message_t frame;
  ASSERT_TRUE(reader.recv(frame));
  const wire::Envelope* envelope = nullptr;
  ASSERT_TRUE(decode_envelope(frame, Limits{}, envelope).is_ok());
  ASSERT_NE(envelope->body_as_Batch(), nullptr);
  std::vector<std::uint64_t> ids;
  for_each_batched(*envelope->body_as_Batch(), [&](zmq::message_t& header) {
    const wire::Envelope* message = nullptr;
    ASSERT_TRUE(decode_batched(header, Limits{}, message).is_ok());
    ids.push_back(message->body_as_JobRequest()->job_id());
  });
  EXPECT_EQ(ids, (std::vector<std::uint64_t>{31, 32}));
}

}  // namespace
}  // namespace bridge::core
