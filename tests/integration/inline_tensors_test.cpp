// Inline tensors (docs/protocol.md, "Inline tensors") across a real fleet: small tensors travel
// inside the header both ways when the client asks, large ones keep their frames, a client that does
// not ask gets frames only, and inline bytes that do not match their shape are refused by name.
#include <gtest/gtest.h>

#include <cstring>

#include <zmq_addon.hpp>

#include "bridge/core/job_codec.hpp"
#include "fleet.hpp"

namespace bridge::testing {
namespace {

using core::Frames;

class InlineTensors : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { fleet_ = new Fleet(FleetOptions{.workers = 1}); }
  static void TearDownTestSuite() {
    delete fleet_;
    fleet_ = nullptr;
  }
  void SetUp() override {
    socket_ = std::make_unique<zmq::socket_t>(context_, zmq::socket_type::dealer);
    socket_->set(zmq::sockopt::linger, 0);
    fleet_->secure_client_socket(*socket_);
    socket_->connect(fleet_->frontend());
  }
  void TearDown() override {
    if (HasFailure()) std::cerr << fleet_->logs();
  }

  // Sends `frames` and returns the answer's frames (empty, with a failure, if none comes).
  Frames exchange(Frames frames) {
    zmq::send_multipart(*socket_, frames);
    zmq::pollitem_t item{socket_->handle(), 0, ZMQ_POLLIN, 0};
    Frames reply;
    if (zmq::poll(&item, 1, std::chrono::seconds(10)) == 0) {
      ADD_FAILURE() << "no answer from the broker";
      return reply;
    }
    (void)zmq::recv_multipart(*socket_, std::back_inserter(reply));
    return reply;
  }

  static const wire::JobResult* result_of(Frames& reply) {
    const wire::Envelope* envelope = nullptr;
    if (reply.empty() || !core::decode_envelope(reply[0], core::Limits{}, envelope).is_ok()) return nullptr;
    return envelope->body_as_JobResult();
  }

  static Fleet* fleet_;
  zmq::context_t context_;
  std::unique_ptr<zmq::socket_t> socket_;
};
Fleet* InlineTensors::fleet_ = nullptr;

Tensor filled(DType dtype, std::int64_t bytes, std::uint8_t seed, const std::string& name) {
  Tensor t = Tensor::zeros(dtype, {bytes / static_cast<std::int64_t>(dtype_size(dtype))}, name);
  auto data = t.mutable_bytes();
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<std::byte>(seed + i * 7);
  return t;
}

void expect_same(const Tensor& got, const Tensor& want) {
  EXPECT_EQ(got.name(), want.name());
  EXPECT_EQ(got.dtype(), want.dtype());
  EXPECT_EQ(got.shape(), want.shape());
  ASSERT_EQ(got.byte_size(), want.byte_size()) << want.name();
  EXPECT_EQ(std::memcmp(got.bytes().data(), want.bytes().data(), want.byte_size()), 0) << want.name();
}

// What the worker sends back: inline outputs within the request's size, the others in frames, in
// order; nothing inline for a request that does not ask.
TEST_F(InlineTensors, OutputsComeBackInlineOnlyWithinWhatTheRequestAsks) {
  const std::vector<Tensor> inputs{filled(DType::kF64, 24, 1, "small"), filled(DType::kF32, 8192, 2, "large"),
                                   filled(DType::kU8, 0, 3, "empty")};
  for (std::uint32_t inline_bytes : {0u, 4096u}) {
    SCOPED_TRACE("inline_bytes " + std::to_string(inline_bytes));
    Frames reply = exchange(core::encode_request({.kernel = "passthrough", .inputs = inputs}, 7, "default",
                                                 std::chrono::seconds(10), 0, inline_bytes));
    const wire::JobResult* result = result_of(reply);
    ASSERT_NE(result, nullptr);
    ASSERT_EQ(result->status(), wire::StatusCode::OK) << core::view(result->message());
    ASSERT_EQ(result->outputs()->size(), 3u);
    const bool asked = inline_bytes > 0;
    EXPECT_EQ(core::is_inline(*result->outputs()->Get(0)), asked);
    EXPECT_FALSE(core::is_inline(*result->outputs()->Get(1))) << "8 KiB is over the size asked for";
    EXPECT_EQ(core::is_inline(*result->outputs()->Get(2)), asked);
    EXPECT_EQ(reply.size(), asked ? 2u : 4u) << "the header and one frame per output not inline";
    JobResult decoded;
    ASSERT_TRUE(core::decode_result(*result, std::span(reply).subspan(1), core::Limits{}, decoded).is_ok());
    for (std::size_t i = 0; i < inputs.size(); ++i) expect_same(decoded.outputs[i], inputs[i]);
  }
}

// However much a request asks for, a result's inline outputs stay within 16 KiB.
TEST_F(InlineTensors, AResultsInlineOutputsStayWithinTheBudgetWhateverTheRequestAsks) {
  const std::vector<Tensor> inputs{filled(DType::kU8, 10000, 4, "a"), filled(DType::kU8, 10000, 5, "b"),
                                   filled(DType::kU8, 10000, 6, "c")};
  Frames reply = exchange(core::encode_request({.kernel = "passthrough", .inputs = inputs}, 8, "default",
                                               std::chrono::seconds(10), 0, 0xffffffffu));
  const wire::JobResult* result = result_of(reply);
  ASSERT_NE(result, nullptr);
  ASSERT_EQ(result->status(), wire::StatusCode::OK) << core::view(result->message());
  std::size_t inline_bytes = 0;
  for (const auto* desc : *result->outputs()) inline_bytes += core::is_inline(*desc) ? desc->data()->size() : 0;
  EXPECT_EQ(inline_bytes, 10000u) << "one of the three fits the 16 KiB budget";
  EXPECT_EQ(reply.size(), 3u);
  JobResult decoded;
  ASSERT_TRUE(core::decode_result(*result, std::span(reply).subspan(1), core::Limits{}, decoded).is_ok());
  for (std::size_t i = 0; i < inputs.size(); ++i) expect_same(decoded.outputs[i], inputs[i]);
}

// The client library both ways: results and their order are the same with inline tensors and without.
TEST_F(InlineTensors, TheClientGetsTheSameResultsWithInlineTensorsAndWithout) {
  for (std::uint32_t inline_bytes : {0u, 4096u}) {
    SCOPED_TRACE("inline_bytes " + std::to_string(inline_bytes));
    Client::Options options = fleet_->client_options();
    options.inline_bytes = inline_bytes;
    Client client(options);
    const Tensor small = filled(DType::kI32, 64, 9, "ids"), large = filled(DType::kF32, 65536, 10, "big");
    JobResult mixed = client.run({.kernel = "passthrough", .inputs = {large, small}});
    ASSERT_TRUE(mixed.ok()) << mixed.status.to_string();
    expect_same(mixed.outputs[0], large);
    expect_same(mixed.outputs[1], small);
    // Small jobs sent together, which the worker may batch: each gets its own sum.
    std::vector<std::vector<Tensor>> sets;
    for (int i = 0; i < 16; ++i)
      sets.push_back({Tensor::vector<float>({float(i), 1}), Tensor::vector<float>({0.5f, float(-i)})});
    auto futures = client.submit_batch("vector_add", sets);
    for (int i = 0; i < 16; ++i) {
      JobResult r = futures[static_cast<std::size_t>(i)].get();
      ASSERT_TRUE(r.ok()) << r.status.to_string();
      EXPECT_EQ(r.outputs[0].values<float>()[0], float(i) + 0.5f);
      EXPECT_EQ(r.outputs[0].values<float>()[1], 1.0f - float(i));
    }
  }
}

// Inline bytes that do not match the shape are refused, naming the tensor; inline bytes with a frame
// for the same tensor as well; the broker keeps serving.
TEST_F(InlineTensors, InlineBytesThatDoNotMatchTheirTensorAreRefusedByName) {
  auto header = [](std::size_t data_bytes) {
    flatbuffers::FlatBufferBuilder fbb;
    std::vector<std::uint8_t> bytes(data_bytes, 1);
    std::vector<std::int64_t> shape{4};
    std::vector<flatbuffers::Offset<wire::TensorDesc>> inputs{wire::CreateTensorDesc(
        fbb, fbb.CreateString("x"), wire::DType::F32, fbb.CreateVector(shape), 0, fbb.CreateVector(bytes))};
    auto body = wire::CreateJobRequest(fbb, 11, fbb.CreateString("default"), 0, fbb.CreateString("passthrough"),
                                       fbb.CreateVector(inputs));
    return core::finish_envelope(fbb, wire::Body::JobRequest, body.Union());
  };
  Frames frames;
  frames.push_back(header(12));
  Frames reply = exchange(std::move(frames));
  const wire::JobResult* result = result_of(reply);
  ASSERT_NE(result, nullptr);
  EXPECT_EQ(result->job_id(), 11u);
  EXPECT_EQ(result->status(), wire::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(core::view(result->message()).find("('x')"), std::string_view::npos) << core::view(result->message());
  EXPECT_NE(core::view(result->message()).find("inline data has 12"), std::string_view::npos);
  frames.clear();
  frames.push_back(header(16));
  frames.emplace_back(16);
  reply = exchange(std::move(frames));
  result = result_of(reply);
  ASSERT_NE(result, nullptr);
  EXPECT_EQ(result->status(), wire::StatusCode::MALFORMED_MESSAGE) << core::view(result->message());
  frames.clear();
  frames.push_back(header(16));
  reply = exchange(std::move(frames));
  result = result_of(reply);
  ASSERT_NE(result, nullptr);
  EXPECT_EQ(result->status(), wire::StatusCode::OK) << core::view(result->message());
}

}  // namespace
}  // namespace bridge::testing
