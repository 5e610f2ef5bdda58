// Hostile and broken input on a raw ZeroMQ socket: every message that can be answered gets an error
// with a code and a message; the broker never crashes and keeps serving well-behaved clients.
#include <gtest/gtest.h>

#include <zmq_addon.hpp>

#include "bridge/core/wire.hpp"
#include "fleet.hpp"

namespace bridge::testing {
namespace {

using core::Frames;

class BadInput : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    FleetOptions options;
    options.workers = 1;
    options.broker_yaml_extra = "limits:\n  max_tensor_bytes: 1048576\n  max_job_bytes: 2097152\n  max_tensors: 4\n";
    fleet_ = new Fleet(options);
  }
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
    // Whatever was sent, the broker is still up and still serves a proper client.
    EXPECT_TRUE(fleet_->broker().running()) << fleet_->broker().log();
    Client client(fleet_->client_options());
    JobResult r =
        client.run({.kernel = "vector_add", .inputs = {Tensor::vector<float>({1}), Tensor::vector<float>({2})}});
    EXPECT_TRUE(r.ok()) << r.status.to_string();
    if (HasFailure()) std::cerr << fleet_->logs();
  }

  struct Answer {
    std::uint64_t job_id = 0;
    StatusCode code = StatusCode::kOk;
    std::string message;
  };

  Answer exchange(Frames frames) {
    zmq::send_multipart(*socket_, frames);
    zmq::pollitem_t item{socket_->handle(), 0, ZMQ_POLLIN, 0};
    if (zmq::poll(&item, 1, std::chrono::seconds(10)) == 0) {
      ADD_FAILURE() << "no answer from the broker";
      return {0, StatusCode::kInternal, "<none>"};
    }
    Frames reply;
    (void)zmq::recv_multipart(*socket_, std::back_inserter(reply));
    const wire::Envelope* envelope = nullptr;
    EXPECT_TRUE(core::decode_envelope(reply[0], core::Limits{}, envelope).is_ok());
    const auto* result = envelope->body_as_JobResult();
    return {result->job_id(), core::from_wire(result->status()), std::string(core::view(result->message()))};
  }

  // A request header; each tensor is {dtype, shape}; the caller adds payload frames.
  static zmq::message_t request(std::uint64_t job_id, const std::string& kernel,
                                std::vector<std::pair<wire::DType, std::vector<std::int64_t>>> tensors,
                                const std::string& tenant = "default", std::uint16_t version = core::kProtocolVersion) {
    flatbuffers::FlatBufferBuilder fbb;
    std::vector<flatbuffers::Offset<wire::TensorDesc>> descs;
    for (auto& [dtype, shape] : tensors)
      descs.push_back(wire::CreateTensorDesc(fbb, 0, dtype, fbb.CreateVector(shape)));
    auto body = wire::CreateJobRequest(fbb, job_id, fbb.CreateString(tenant), 0, fbb.CreateString(kernel),
                                       fbb.CreateVector(descs));
    wire::FinishEnvelopeBuffer(fbb, wire::CreateEnvelope(fbb, version, wire::Body::JobRequest, body.Union()));
    return core::to_frame(fbb);
  }
  static Frames frames_of(zmq::message_t header, std::vector<std::size_t> payload_sizes = {}) {
    Frames frames;
    frames.push_back(std::move(header));
    for (auto size : payload_sizes) frames.emplace_back(size);
    return frames;
  }

  static Fleet* fleet_;
  zmq::context_t context_;
  std::unique_ptr<zmq::socket_t> socket_;
};
Fleet* BadInput::fleet_ = nullptr;

TEST_F(BadInput, BytesThatAreNotAFlatBufferAreMalformed) {
  Frames frames;
  frames.emplace_back(std::string("GET / HTTP/1.1\r\n\r\n"));
  auto a = exchange(std::move(frames));
  EXPECT_EQ(a.code, StatusCode::kMalformedMessage);
  EXPECT_EQ(a.job_id, 0u);
  EXPECT_NE(a.message.find("docs/protocol.md"), std::string::npos) << a.message;
}

TEST_F(BadInput, EmptyFrameIsMalformed) {
  Frames frames;
  frames.emplace_back();
  EXPECT_EQ(exchange(std::move(frames)).code, StatusCode::kMalformedMessage);
}

TEST_F(BadInput, AnotherProtocolVersionIsRefusedByName) {
  auto a = exchange(frames_of(request(5, "passthrough", {}, "default", 7)));
  EXPECT_EQ(a.code, StatusCode::kVersionMismatch);
  EXPECT_NE(a.message.find("version 7"), std::string::npos) << a.message;
  EXPECT_EQ(a.job_id, 5u) << "the header was readable: the refusal names its job";
}

// A CancelRequest is never answered; a refused one neither, since a JobResult carrying its job's id
// would read as that job's answer. The job it names runs on.
TEST_F(BadInput, ACancelRequestOfAnotherVersionIsDroppedAndItsJobRunsOn) {
  flatbuffers::FlatBufferBuilder job_fbb;
  std::vector<flatbuffers::Offset<wire::Param>> params{wire::CreateParam(job_fbb, job_fbb.CreateString("ms"), 300)};
  auto job = wire::CreateJobRequest(job_fbb, 15, job_fbb.CreateString("default"), 0, job_fbb.CreateString("sleep"), 0,
                                    job_fbb.CreateVector(params));
  zmq::send_multipart(*socket_, frames_of(core::finish_envelope(job_fbb, wire::Body::JobRequest, job.Union())));
  flatbuffers::FlatBufferBuilder fbb;
  auto body = wire::CreateCancelRequest(fbb, 15);
  wire::FinishEnvelopeBuffer(fbb, wire::CreateEnvelope(fbb, 2, wire::Body::CancelRequest, body.Union()));
  zmq::send_multipart(*socket_, frames_of(core::to_frame(fbb)));
  zmq::pollitem_t item{socket_->handle(), 0, ZMQ_POLLIN, 0};
  ASSERT_EQ(zmq::poll(&item, 1, std::chrono::seconds(5)), 1);
  Frames reply;
  (void)zmq::recv_multipart(*socket_, std::back_inserter(reply));
  const wire::Envelope* envelope = nullptr;
  ASSERT_TRUE(core::decode_envelope(reply[0], core::Limits{}, envelope).is_ok());
  const auto* result = envelope->body_as_JobResult();
  ASSERT_NE(result, nullptr);
  EXPECT_EQ(result->job_id(), 15u);
  EXPECT_EQ(result->status(), wire::StatusCode::OK) << "the job's one answer is its result";
}

TEST_F(BadInput, FewerPayloadFramesThanTensorsIsMalformed) {
  auto a = exchange(frames_of(request(6, "vector_add", {{wire::DType::F32, {1}}, {wire::DType::F32, {1}}}), {4}));
  EXPECT_EQ(a.code, StatusCode::kMalformedMessage);
  EXPECT_EQ(a.job_id, 6u);
}

TEST_F(BadInput, TooManyFramesIsTooLarge) {
  auto a = exchange(frames_of(request(7, "passthrough", {}), {1, 1, 1, 1, 1, 1, 1, 1}));
  EXPECT_EQ(a.code, StatusCode::kTooLarge);
  EXPECT_EQ(a.job_id, 7u);
  EXPECT_NE(a.message.find("max_tensors"), std::string::npos) << a.message;
}

TEST_F(BadInput, ShapeThatDisagreesWithTheBytesIsInvalid) {
  auto a = exchange(frames_of(request(8, "passthrough", {{wire::DType::F32, {3}}}), {8}));
  EXPECT_EQ(a.code, StatusCode::kInvalidArgument);
  EXPECT_NE(a.message.find("12 bytes"), std::string::npos) << a.message;
}

TEST_F(BadInput, DeclaredTensorOverTheLimitIsTooLarge) {
  auto a = exchange(frames_of(request(9, "passthrough", {{wire::DType::F32, {1 << 20}}}), {16}));
  EXPECT_EQ(a.code, StatusCode::kTooLarge);
  EXPECT_NE(a.message.find("max_tensor_bytes"), std::string::npos) << a.message;
}

TEST_F(BadInput, UnknownKernelIsAnsweredNotLeftHanging) {
  auto a = exchange(frames_of(request(10, "fft", {})));
  EXPECT_EQ(a.code, StatusCode::kUnknownKernel);
  EXPECT_NE(a.message.find("available: "), std::string::npos) << a.message;
  EXPECT_NE(a.message.find("matmul"), std::string::npos) << a.message;
}

TEST_F(BadInput, ATenantOtherThanTheKeysIsRefused) {
  // The key is enrolled for "default": naming another tenant, listed or not, is not allowed.
  auto a = exchange(frames_of(request(11, "passthrough", {}, "mallory")));
  EXPECT_EQ(a.code, StatusCode::kPermissionDenied);
  EXPECT_NE(a.message.find("may not act for tenant 'mallory'"), std::string::npos) << a.message;
}

TEST_F(BadInput, WrongDtypeForTheKernelIsInvalidFromTheWorker) {
  auto a = exchange(frames_of(request(12, "vector_add", {{wire::DType::I32, {2}}, {wire::DType::I32, {2}}}), {8, 8}));
  EXPECT_EQ(a.code, StatusCode::kInvalidArgument);
  EXPECT_NE(a.message.find("must be f32"), std::string::npos) << a.message;
}

TEST_F(BadInput, JobIdZeroIsInvalid) {
  EXPECT_EQ(exchange(frames_of(request(0, "passthrough", {}))).code, StatusCode::kInvalidArgument);
}

TEST_F(BadInput, WorkerMessageFromAClientIsMalformed) {
  flatbuffers::FlatBufferBuilder fbb;
  auto body = wire::CreateGoodbye(fbb, fbb.CreateString("hi"));
  auto a = exchange(frames_of(core::finish_envelope(fbb, wire::Body::Goodbye, body.Union())));
  EXPECT_EQ(a.code, StatusCode::kMalformedMessage);
  EXPECT_NE(a.message.find("Goodbye"), std::string::npos) << a.message;
}

TEST_F(BadInput, AFrameOverTheLimitIsAnsweredTooLargeWithItsJobId) {
  // 1.5 MiB against max_tensor_bytes of 1 MiB: read (up to twice the limit), refused, logged.
  const std::size_t size = 3 << 19;
  auto a =
      exchange(frames_of(request(13, "passthrough", {{wire::DType::U8, {static_cast<std::int64_t>(size)}}}), {size}));
  EXPECT_EQ(a.code, StatusCode::kTooLarge);
  EXPECT_EQ(a.job_id, 13u);
  EXPECT_NE(a.message.find("max_tensor_bytes"), std::string::npos) << a.message;
  EXPECT_TRUE(eventually([&] { return fleet_->broker().log().find("job 13: refused: TOO_LARGE") != std::string::npos; },
                         std::chrono::seconds(2)))
      << fleet_->broker().log();
}

// A header over max_header_bytes (64 KiB here; inline bytes make it so) is not read at all: its
// refusal cannot name the job (docs/protocol.md, "Refusals without a job id").
TEST_F(BadInput, AHeaderOverTheLimitIsTooLargeWithoutItsJobId) {
  flatbuffers::FlatBufferBuilder fbb;
  const std::vector<std::uint8_t> bytes(70000, 1);
  const std::vector<std::int64_t> shape{70000};
  std::vector<flatbuffers::Offset<wire::TensorDesc>> inputs{
      wire::CreateTensorDesc(fbb, 0, wire::DType::U8, fbb.CreateVector(shape), 0, fbb.CreateVector(bytes))};
  auto body = wire::CreateJobRequest(fbb, 21, fbb.CreateString("default"), 0, fbb.CreateString("passthrough"),
                                     fbb.CreateVector(inputs));
  auto a = exchange(frames_of(core::finish_envelope(fbb, wire::Body::JobRequest, body.Union())));
  EXPECT_EQ(a.code, StatusCode::kTooLarge) << a.message;
  EXPECT_EQ(a.job_id, 0u);
  EXPECT_NE(a.message.find("the limit is 65536"), std::string::npos) << a.message;
  EXPECT_NE(a.message.find("frames of their own"), std::string::npos) << "says nothing of what to do: " << a.message;
}

TEST_F(BadInput, AFrameFarOverTheLimitDropsOnlyThatConnection) {
  Frames frames = frames_of(request(14, "passthrough", {{wire::DType::U8, {4 << 20}}}), {4 << 20});
  zmq::send_multipart(*socket_, frames);  // over ZMQ_MAXMSGSIZE (twice the limit): the broker closes this connection
  // TearDown checks that the broker still serves other clients.
}

TEST_F(BadInput, AnUnknownParamIsInvalidAndNamed) {
  Client client(fleet_->client_options());
  JobResult r = client.run({.kernel = "saxpy",
                            .inputs = {Tensor::vector<float>({1}), Tensor::vector<float>({2})},
                            .params = {{"alpha", 2}, {"alhpa", 2}}});
  EXPECT_EQ(r.status.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status.message().find("unknown param 'alhpa'"), std::string::npos) << r.status.message();
  EXPECT_NE(r.status.message().find("its params: alpha"), std::string::npos) << r.status.message();
}

TEST_F(BadInput, AParamGivenTwiceIsInvalid) {
  flatbuffers::FlatBufferBuilder fbb;
  std::vector<flatbuffers::Offset<wire::Param>> params{wire::CreateParam(fbb, fbb.CreateString("ms"), 1),
                                                       wire::CreateParam(fbb, fbb.CreateString("ms"), 5000)};
  auto body = wire::CreateJobRequest(fbb, 16, fbb.CreateString("default"), 0, fbb.CreateString("sleep"), 0,
                                     fbb.CreateVector(params));
  auto a = exchange(frames_of(core::finish_envelope(fbb, wire::Body::JobRequest, body.Union())));
  EXPECT_EQ(a.code, StatusCode::kInvalidArgument);
  EXPECT_EQ(a.job_id, 16u);
  EXPECT_NE(a.message.find("param 'ms' is given twice"), std::string::npos) << a.message;
}

TEST_F(BadInput, RankZeroTensorsKeepTheirShape) {
  Client client(fleet_->client_options());
  const Tensor scalar = Tensor::from<float>(std::vector<float>{3.f}, Shape{});
  JobResult same = client.run({.kernel = "passthrough", .inputs = {scalar}});
  ASSERT_TRUE(same.ok()) << same.status.to_string();
  ASSERT_EQ(same.outputs.size(), 1u);
  EXPECT_EQ(same.outputs[0].shape(), Shape{});
  JobResult sum = client.run({.kernel = "vector_add", .inputs = {scalar, scalar}});
  ASSERT_TRUE(sum.ok()) << sum.status.to_string();
  EXPECT_EQ(sum.outputs[0].shape(), Shape{});
  EXPECT_EQ(sum.outputs[0].values<float>()[0], 6.f);
  // Kernels with an axis to work along refuse a scalar rather than treat it as [1].
  for (const char* kernel : {"softmax", "normalize"}) {
    JobResult r = client.run({.kernel = kernel, .inputs = {scalar}});
    EXPECT_EQ(r.status.code(), StatusCode::kInvalidArgument) << kernel;
    EXPECT_NE(r.status.message().find("rank"), std::string::npos) << r.status.message();
  }
}

TEST_F(BadInput, StatusTellsTheBrokersDefaultTimeout) {
  Client client(fleet_->client_options());
  FleetStatus status;
  ASSERT_TRUE(client.status(status).is_ok());
  EXPECT_EQ(status.default_timeout_ms, 30000u);
}

TEST_F(BadInput, GarbageOnTheWorkerSocketIsIgnored) {
  zmq::socket_t impostor(context_, zmq::socket_type::dealer);
  impostor.set(zmq::sockopt::linger, 0);
  impostor.set(zmq::sockopt::routing_id, std::string("impostor-worker"));
  fleet_->secure_worker_socket(impostor);  // enrolled: the broker reads what it sends
  impostor.connect(fleet_->backend());
  Frames junk;
  junk.emplace_back(std::string("\x00\x01\x02garbage", 10));
  zmq::send_multipart(impostor, junk);
  // A valid-looking result from a worker the broker never met: it asks for a hello instead.
  Frames result;
  result.push_back(core::make_error_result(1, {StatusCode::kOk, ""}));
  zmq::send_multipart(impostor, result);
  zmq::pollitem_t item{impostor.handle(), 0, ZMQ_POLLIN, 0};
  ASSERT_EQ(zmq::poll(&item, 1, std::chrono::seconds(5)), 1);
  Frames reply;
  (void)zmq::recv_multipart(impostor, std::back_inserter(reply));
  const wire::Envelope* envelope = nullptr;
  ASSERT_TRUE(core::decode_envelope(reply[0], core::Limits{}, envelope).is_ok());
  EXPECT_EQ(envelope->body_type(), wire::Body::Reregister);
}

TEST_F(BadInput, DuplicateJobIdWhileInProgressIsAnsweredOnce) {
  auto send_sleep = [&] {
    flatbuffers::FlatBufferBuilder fbb;
    std::vector<flatbuffers::Offset<wire::Param>> params{wire::CreateParam(fbb, fbb.CreateString("ms"), 200)};
    auto body = wire::CreateJobRequest(fbb, 77, fbb.CreateString("default"), 0, fbb.CreateString("sleep"), 0,
                                       fbb.CreateVector(params));
    zmq::send_multipart(*socket_, frames_of(core::finish_envelope(fbb, wire::Body::JobRequest, body.Union())));
  };
  send_sleep();
  send_sleep();
  zmq::pollitem_t item{socket_->handle(), 0, ZMQ_POLLIN, 0};
  ASSERT_EQ(zmq::poll(&item, 1, std::chrono::seconds(5)), 1);
  Frames reply;
  (void)zmq::recv_multipart(*socket_, std::back_inserter(reply));
  item.revents = 0;
  EXPECT_EQ(zmq::poll(&item, 1, std::chrono::milliseconds(500)), 0) << "a second answer arrived for one job id";
}

}  // namespace
}  // namespace bridge::testing
