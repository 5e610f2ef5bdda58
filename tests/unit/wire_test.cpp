// The wire codec: every check a received message goes through before any of it is used.
#include <gtest/gtest.h>

#include "bridge/core/job_codec.hpp"
#include "bridge/core/liveness.hpp"

namespace bridge::core {
namespace {

const wire::Envelope* decode_ok(zmq::message_t& frame) {
  const wire::Envelope* envelope = nullptr;
  Status s = decode_envelope(frame, Limits{}, envelope);
  EXPECT_TRUE(s.is_ok()) << s.to_string();
  return envelope;
}

JobRequest vector_add_request() {
  JobRequest job;
  job.kernel = "vector_add";
  job.inputs = {Tensor::vector<float>({1, 2, 3}, "a"), Tensor::vector<float>({4, 5, 6}, "b")};
  job.params = {{"alpha", 2.5}};
  job.priority = 7;
  job.placement = Placement::kPreferGpu;
  return job;
}

TEST(Wire, RequestRoundTripsWithTensorsAsSeparateFrames) {
  Frames frames = encode_request(vector_add_request(), 42, "team-a", std::chrono::milliseconds(1500));
  ASSERT_EQ(frames.size(), 3u);
  EXPECT_EQ(frames[1].size(), 12u);  // 3 floats, not inside the header
  const auto* request = decode_ok(frames[0])->body_as_JobRequest();
  ASSERT_NE(request, nullptr);
  EXPECT_EQ(request->job_id(), 42u);
  EXPECT_EQ(view(request->tenant()), "team-a");
  EXPECT_EQ(view(request->kernel()), "vector_add");
  EXPECT_EQ(request->timeout_ms(), 1500u);
  EXPECT_EQ(request->priority(), 7);
  EXPECT_EQ(request->placement(), wire::Placement::PreferGpu);
  ASSERT_EQ(request->params()->size(), 1u);
  EXPECT_EQ(request->params()->Get(0)->value(), 2.5);
  std::uint64_t bytes = 0;
  EXPECT_TRUE(validate_request(*request, std::span(frames).subspan(1), Limits{}, bytes).is_ok());
  EXPECT_EQ(bytes, 24u);
  Tensor a = tensor_from_frame(*request->inputs()->Get(0), std::move(frames[1]));
  EXPECT_EQ(a.name(), "a");
  EXPECT_EQ(a.values<float>()[2], 3.0f);
}

TEST(Wire, ResultRoundTripsWithOutputsAndTimings) {
  flatbuffers::FlatBufferBuilder fbb;
  fbb.ForceDefaults(true);
  Tensor out = Tensor::vector<float>({5, 7, 9}, "c");
  std::vector<flatbuffers::Offset<wire::TensorDesc>> outputs{add_tensor_desc(fbb, out)};
  const wire::Timings timings(10, 20, 30);
  auto body = wire::CreateJobResult(fbb, 9, wire::StatusCode::OK, fbb.CreateString(""), fbb.CreateVector(outputs),
                                    fbb.CreateString("w1"), wire::DeviceKind::Cpu, fbb.CreateString("cpu"),
                                    fbb.CreateString(""), &timings, 0, 1);
  Frames frames;
  frames.push_back(finish_envelope(fbb, wire::Body::JobResult, body.Union()));
  frames.push_back(tensor_to_frame(out));
  const auto* header = decode_ok(frames[0])->body_as_JobResult();
  JobResult result;
  ASSERT_TRUE(decode_result(*header, std::span(frames).subspan(1), Limits{}, result).is_ok());
  EXPECT_EQ(result.job_id, 9u);
  EXPECT_TRUE(result.ok());
  EXPECT_EQ(result.worker_id, "w1");
  EXPECT_EQ(result.timings.compute.count(), 30);
  EXPECT_EQ(result.attempts, 1);
  ASSERT_EQ(result.outputs.size(), 1u);
  EXPECT_EQ(result.outputs[0].values<float>()[1], 7.0f);
}

TEST(Wire, RefusesBytesThatAreNotAHeader) {
  const wire::Envelope* envelope = nullptr;
  zmq::message_t garbage(std::string("definitely not a flatbuffer"));
  EXPECT_EQ(decode_envelope(garbage, Limits{}, envelope).code(), StatusCode::kMalformedMessage);
  zmq::message_t empty;
  EXPECT_EQ(decode_envelope(empty, Limits{}, envelope).code(), StatusCode::kMalformedMessage);
  EXPECT_EQ(envelope, nullptr);
}

TEST(Wire, TruncatedHeaderIsRefusedOrReadsExactlyTheOriginal) {
  Frames frames = encode_request(vector_add_request(), 1234, "t", std::chrono::milliseconds(1));
  const auto* bytes = static_cast<const char*>(frames[0].data());
  std::size_t refused = 0;
  for (std::size_t n = 0; n < frames[0].size(); ++n) {
    zmq::message_t cut(bytes, n);
    const wire::Envelope* envelope = nullptr;
    if (!decode_envelope(cut, Limits{}, envelope).is_ok()) {
      ++refused;
      continue;
    }
    // Only trailing alignment padding may be cut off; then every field still reads the same.
    const auto* request = envelope->body_as_JobRequest();
    ASSERT_NE(request, nullptr) << "length " << n;
    EXPECT_EQ(request->job_id(), 1234u) << "length " << n;
    EXPECT_EQ(view(request->kernel()), "vector_add") << "length " << n;
    EXPECT_EQ(request->inputs()->size(), 2u) << "length " << n;
  }
  EXPECT_GE(refused, frames[0].size() - 8);
}

TEST(Wire, RefusesAnotherProtocolVersionByName) {
  flatbuffers::FlatBufferBuilder fbb;
  auto body = wire::CreateStatusRequest(fbb, 1);
  wire::FinishEnvelopeBuffer(fbb,
                             wire::CreateEnvelope(fbb, kProtocolVersion + 1, wire::Body::StatusRequest, body.Union()));
  const wire::Envelope* envelope = nullptr;
  zmq::message_t frame = to_frame(fbb);
  Status s = decode_envelope(frame, Limits{}, envelope);
  EXPECT_EQ(s.code(), StatusCode::kVersionMismatch);
  EXPECT_NE(s.message().find("version 2"), std::string::npos) << s.message();
}

TEST(Wire, RefusesHeaderOverTheLimit) {
  Frames frames = encode_request(vector_add_request(), 1, "t", std::chrono::milliseconds(1));
  Limits limits;
  limits.max_header_bytes = frames[0].size() - 1;
  const wire::Envelope* envelope = nullptr;
  EXPECT_EQ(decode_envelope(frames[0], limits, envelope).code(), StatusCode::kTooLarge);
}

// Builds a request whose single tensor declares `shape`/`dtype`, followed by a frame of `frame_bytes`.
Status validate_single(std::vector<std::int64_t> shape, wire::DType dtype, std::size_t frame_bytes,
                       Limits limits = {}) {
  flatbuffers::FlatBufferBuilder fbb;
  std::vector<flatbuffers::Offset<wire::TensorDesc>> inputs{
      wire::CreateTensorDesc(fbb, fbb.CreateString("x"), dtype, fbb.CreateVector(shape))};
  auto body = wire::CreateJobRequest(fbb, 1, fbb.CreateString("t"), 0, fbb.CreateString("k"), fbb.CreateVector(inputs));
  zmq::message_t header = finish_envelope(fbb, wire::Body::JobRequest, body.Union());
  Frames payload;
  payload.emplace_back(frame_bytes);
  std::uint64_t total = 0;
  return validate_request(*decode_ok(header)->body_as_JobRequest(), payload, limits, total);
}

TEST(Wire, ChecksTensorBytesAgainstShapeAndDtype) {
  EXPECT_TRUE(validate_single({2, 3}, wire::DType::F32, 24).is_ok());
  EXPECT_EQ(validate_single({2, 3}, wire::DType::F32, 20).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(validate_single({2, 3}, wire::DType::F64, 24).code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(validate_single({0, 5}, wire::DType::F32, 0).is_ok());
  EXPECT_TRUE(validate_single({}, wire::DType::I64, 8).is_ok());  // rank 0: one element
}

TEST(Wire, RefusesNegativeHugeAndDeepShapes) {
  EXPECT_EQ(validate_single({-1}, wire::DType::F32, 0).code(), StatusCode::kInvalidArgument);
  // Dimensions whose product overflows 64 bits must not wrap around to a small number.
  EXPECT_EQ(validate_single({1ll << 40, 1ll << 40, 16}, wire::DType::F32, 0).code(), StatusCode::kTooLarge);
  Limits limits;
  limits.max_rank = 2;
  EXPECT_EQ(validate_single({1, 1, 1}, wire::DType::F32, 4, limits).code(), StatusCode::kTooLarge);
  limits = {};
  limits.max_tensor_bytes = 16;
  EXPECT_EQ(validate_single({5}, wire::DType::F32, 20, limits).code(), StatusCode::kTooLarge);
  // A dimension of 0 counts as 1 against the limit: a tensor with no bytes cannot declare other
  // dimensions (a channel count a kernel works through) without bound.
  EXPECT_EQ(validate_single({0, 5}, wire::DType::F32, 0, limits).code(), StatusCode::kTooLarge);
  EXPECT_EQ(validate_single({0, 1ll << 62}, wire::DType::F32, 0).code(), StatusCode::kTooLarge);
  EXPECT_TRUE(validate_single({0, 4}, wire::DType::F32, 0, limits).is_ok());
}

TEST(Wire, RefusesUnknownDtype) {
  EXPECT_EQ(validate_single({1}, static_cast<wire::DType>(200), 4).code(), StatusCode::kInvalidArgument);
}

TEST(Wire, RefusesFrameCountThatDoesNotMatchTensors) {
  Frames frames = encode_request(vector_add_request(), 1, "t", std::chrono::milliseconds(1));
  frames.pop_back();
  std::uint64_t total = 0;
  Status s =
      validate_request(*decode_ok(frames[0])->body_as_JobRequest(), std::span(frames).subspan(1), Limits{}, total);
  EXPECT_EQ(s.code(), StatusCode::kMalformedMessage);
}

// A single-tensor request whose tensor carries `data` bytes inline (and `resident`, when given),
// followed by `frames` empty payload frames.
Status validate_inline(std::vector<std::int64_t> shape, std::size_t data, std::size_t frames = 0,
                       const char* resident = nullptr, std::uint64_t* total = nullptr) {
  flatbuffers::FlatBufferBuilder fbb;
  std::vector<std::uint8_t> bytes(data, 1);
  std::vector<flatbuffers::Offset<wire::TensorDesc>> inputs{
      wire::CreateTensorDesc(fbb, 0, wire::DType::F32, fbb.CreateVector(shape),
                             resident == nullptr ? 0 : fbb.CreateString(resident), fbb.CreateVector(bytes))};
  auto body = wire::CreateJobRequest(fbb, 1, fbb.CreateString("t"), resident == nullptr ? 0 : fbb.CreateString("a"),
                                     fbb.CreateString("k"), fbb.CreateVector(inputs));
  zmq::message_t header = finish_envelope(fbb, wire::Body::JobRequest, body.Union());
  Frames payload(frames);
  std::uint64_t counted = 0;
  Status s = validate_request(*decode_ok(header)->body_as_JobRequest(), payload, Limits{}, counted);
  if (total != nullptr) *total = counted;
  return s;
}

TEST(Wire, InlineBytesAreCheckedAndCountedAsAFramesWouldBe) {
  std::uint64_t total = 0;
  EXPECT_TRUE(validate_inline({2, 3}, 24, 0, nullptr, &total).is_ok());
  EXPECT_EQ(total, 24u) << "inline bytes count toward the job's bytes";
  Status short_data = validate_inline({2, 3}, 20);
  EXPECT_EQ(short_data.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(short_data.message().find("inline data has 20"), std::string::npos) << short_data.message();
  EXPECT_TRUE(validate_inline({0}, 0).is_ok()) << "an empty tensor inline";
  EXPECT_EQ(validate_inline({2}, 8, 1).code(), StatusCode::kMalformedMessage) << "and a frame for it as well";
  EXPECT_EQ(validate_inline({2}, 8, 0, "w").code(), StatusCode::kInvalidArgument) << "both inline and resident";
  // Where only frames may carry tensors (a result's kept tensors, an activation), inline is refused.
  flatbuffers::FlatBufferBuilder fbb;
  std::vector<flatbuffers::Offset<wire::TensorDesc>> kept{add_tensor_desc(fbb, Tensor::zeros(DType::kF32, {1}), true)};
  fbb.Finish(fbb.CreateVector(kept));
  const auto* descs = flatbuffers::GetRoot<TensorDescs>(fbb.GetBufferPointer());
  EXPECT_EQ(validate_tensors(descs, {}, Limits{}, total, {.inline_data = false}).code(), StatusCode::kMalformedMessage);
  EXPECT_TRUE(validate_tensors(descs, {}, Limits{}, total).is_ok());
}

TEST(Wire, SmallInputsGoInlineWithinTheBudgetAndTheRestInFrames) {
  JobRequest request;
  request.kernel = "passthrough";
  request.inputs = {Tensor::zeros(DType::kF32, {1000}), Tensor::zeros(DType::kF32, {2000}),
                    Tensor::zeros(DType::kU8, {16}),    Tensor::zeros(DType::kF32, {1000}),
                    Tensor::zeros(DType::kF32, {1000}), Tensor::zeros(DType::kF32, {1000}),
                    Tensor::zeros(DType::kF32, {1000})};
  Frames frames = encode_request(request, 1, "t", std::chrono::milliseconds(1), 0, kDefaultInlineBytes);
  // Inline: 4000 + 16 + 4000 + 4000 + 4000 bytes; the 8000-byte one is over the size, the last over
  // the budget (16 KiB).
  ASSERT_EQ(frames.size(), 3u);
  EXPECT_EQ(frames[1].size(), 8000u);
  EXPECT_EQ(frames[2].size(), 4000u);
  const auto* header = decode_ok(frames[0])->body_as_JobRequest();
  std::uint64_t total = 0;
  ASSERT_TRUE(validate_request(*header, std::span(frames).subspan(1), Limits{}, total).is_ok());
  EXPECT_EQ(total, 4u * (1000 + 2000 + 1000 + 1000 + 1000 + 1000) + 16);
  EXPECT_LT(frames[0].size(), kInlineBudgetBytes + 1024);
}

TEST(Wire, RefusesZeroJobIdAndEmptyKernel) {
  Frames frames = encode_request(vector_add_request(), 0, "t", std::chrono::milliseconds(1));
  std::uint64_t total = 0;
  EXPECT_EQ(validate_request(*decode_ok(frames[0])->body_as_JobRequest(), std::span(frames).subspan(1), Limits{}, total)
                .code(),
            StatusCode::kInvalidArgument);
  JobRequest no_kernel = vector_add_request();
  no_kernel.kernel.clear();
  frames = encode_request(no_kernel, 1, "t", std::chrono::milliseconds(1));
  EXPECT_EQ(validate_request(*decode_ok(frames[0])->body_as_JobRequest(), std::span(frames).subspan(1), Limits{}, total)
                .code(),
            StatusCode::kInvalidArgument);
}

// actor_version_seen is the client's word: past any version an actor reaches (and past what Redis's
// Lua numbers hold exactly) it is refused, so a lie cannot wedge the actor's versions.
TEST(Wire, RefusesAnActorVersionSeenPastAnyVersionAnActorReaches) {
  JobRequest call = vector_add_request();
  call.actor_id = "m";
  std::uint64_t total = 0;
  for (const std::uint64_t seen : {kMaxActorVersion, kMaxActorVersion + 1, ~std::uint64_t{0}}) {
    Frames frames = encode_request(call, 1, "t", std::chrono::milliseconds(1), seen);
    const auto* request = decode_ok(frames[0])->body_as_JobRequest();
    EXPECT_EQ(request->actor_version_seen(), seen);
    const Status s = validate_request(*request, std::span(frames).subspan(1), Limits{}, total);
    if (seen == kMaxActorVersion) {
      EXPECT_TRUE(s.is_ok()) << s.to_string();
    } else {
      EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
      EXPECT_NE(s.message().find("beyond any version an actor can reach"), std::string::npos) << s.message();
    }
  }
  // Not sent at all for a plain job: the client names no actor.
  Frames plain = encode_request(vector_add_request(), 1, "t", std::chrono::milliseconds(1), 5);
  EXPECT_EQ(decode_ok(plain[0])->body_as_JobRequest()->actor_version_seen(), 0u);
}

TEST(Wire, RefusesTotalOverJobLimit) {
  Frames frames = encode_request(vector_add_request(), 1, "t", std::chrono::milliseconds(1));
  Limits limits;
  limits.max_job_bytes = 20;
  limits.max_tensor_bytes = 20;
  std::uint64_t total = 0;
  EXPECT_EQ(
      validate_request(*decode_ok(frames[0])->body_as_JobRequest(), std::span(frames).subspan(1), limits, total).code(),
      StatusCode::kTooLarge);
}

TEST(Wire, MisalignedFrameIsCopiedToAlignedStorage) {
  // ZeroMQ may deliver a frame at any offset inside its receive buffer; model that with a frame that
  // points one byte into an aligned buffer (zmq_msg_init_data, no free function).
  alignas(16) char storage[16] = {};
  const float values[2] = {1.5f, -2.0f};
  std::memcpy(storage + 1, values, sizeof values);
  zmq::message_t misaligned(storage + 1, sizeof values, nullptr, nullptr);
  flatbuffers::FlatBufferBuilder fbb;
  fbb.Finish(wire::CreateTensorDesc(fbb, 0, wire::DType::F32, fbb.CreateVector(std::vector<std::int64_t>{2})));
  const auto* desc = flatbuffers::GetRoot<wire::TensorDesc>(fbb.GetBufferPointer());
  bool realigned = false;
  Tensor t = tensor_from_frame(*desc, std::move(misaligned), &realigned);
  EXPECT_TRUE(realigned);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(t.bytes().data()) % alignof(float), 0u);
  EXPECT_EQ(t.values<float>()[0], 1.5f);
  EXPECT_EQ(t.values<float>()[1], -2.0f);
}

TEST(Wire, MisalignedHeaderIsRealignedBeforeDecoding) {
  Frames frames = encode_request(vector_add_request(), 99, "t", std::chrono::milliseconds(1));
  std::vector<char> storage(frames[0].size() + 8);
  std::memcpy(storage.data() + 3, frames[0].data(), frames[0].size());
  zmq::message_t misaligned(storage.data() + 3, frames[0].size(), nullptr, nullptr);
  const wire::Envelope* envelope = decode_ok(misaligned);
  ASSERT_NE(envelope, nullptr);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(envelope) % 4, 0u);
  EXPECT_EQ(envelope->body_as_JobRequest()->job_id(), 99u);
}

TEST(Wire, AlignedFrameIsUsedInPlace) {
  alignas(16) float values[4] = {1, 2, 3, 4};
  zmq::message_t frame(values, sizeof values, nullptr, nullptr);
  flatbuffers::FlatBufferBuilder fbb;
  fbb.Finish(wire::CreateTensorDesc(fbb, 0, wire::DType::F32, fbb.CreateVector(std::vector<std::int64_t>{4})));
  bool realigned = true;
  Tensor t =
      tensor_from_frame(*flatbuffers::GetRoot<wire::TensorDesc>(fbb.GetBufferPointer()), std::move(frame), &realigned);
  EXPECT_FALSE(realigned);
  EXPECT_EQ(t.bytes().data(), reinterpret_cast<const std::byte*>(values));
}

TEST(Wire, ErrorResultCarriesCodeMessageAndRetryAfter) {
  zmq::message_t frame = make_error_result(5, {StatusCode::kResourceExhausted, "tenant full"}, 250);
  const auto* result = decode_ok(frame)->body_as_JobResult();
  EXPECT_EQ(result->job_id(), 5u);
  EXPECT_EQ(result->status(), wire::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(view(result->message()), "tenant full");
  EXPECT_EQ(result->retry_after_ms(), 250u);
}

TEST(Liveness, OnlyLargeMessagesAreAnnouncedAndTheirGraceIsTheirTransferTime) {
  EXPECT_FALSE(core::announce_message(core::kAnnouncedMessageBytes - 1, 3).has_value());
  auto announcement = core::announce_message(64ull << 20, 3);
  ASSERT_TRUE(announcement.has_value());
  const wire::Envelope* envelope = nullptr;
  ASSERT_TRUE(core::decode_envelope(*announcement, core::Limits{}, envelope).is_ok());
  ASSERT_EQ(envelope->body_type(), wire::Body::Heartbeat);
  EXPECT_EQ(envelope->body_as_Heartbeat()->incoming_bytes(), 64ull << 20);
  EXPECT_EQ(envelope->body_as_Heartbeat()->inflight(), 3u);
  EXPECT_EQ(envelope->body_as_Heartbeat()->metrics(), nullptr);

  const core::Limits limits;  // max_job_bytes 1 GiB
  EXPECT_EQ(core::transfer_grace(0, 16, limits).count(), 0);
  const auto grace = core::transfer_grace(64ull << 20, 16, limits);
  EXPECT_GE(grace.count(), 4000);
  EXPECT_LE(grace.count(), 4001);
  EXPECT_GE(core::transfer_grace(1ull << 30, 1, limits).count(), 1024 * 1000);  // 1 GiB at 1 MiB/s
  // Announcing more than any message may be buys no more than the largest message's time.
  EXPECT_EQ(core::transfer_grace(~0ull, 16, limits), core::transfer_grace((1ull << 30) + (64 << 10), 16, limits));
  EXPECT_LE(core::transfer_grace(~0ull, 16, limits).count(), 65 * 1000);
}

TEST(Status, NamesEveryCode) {
  for (unsigned c = 0; c <= static_cast<unsigned>(wire::StatusCode::MAX); ++c)
    EXPECT_EQ(status_code_name(static_cast<StatusCode>(c)), wire::EnumNameStatusCode(static_cast<wire::StatusCode>(c)));
}

}  // namespace
}  // namespace bridge::core
