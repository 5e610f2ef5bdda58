// Every control message of core/protocol.hpp: encoded, verified as a received frame would be, and
// decoded to the same struct; and each decoder refusing another body, naming both.
#include "bridge/core/frame_layouts.hpp"
#include "bridge/core/job_codec.hpp"
#include "bridge/core/protocol.hpp"
#include "bridge/core/protocol_jobs.hpp"
#include "bridge/core/protocol_replies.hpp"

#include <gtest/gtest.h>

namespace bridge::core::protocol {
namespace {

// The frame as a peer receives it: verified by decode_envelope, then decoded.
template <class Message>
Message round_trip(const Message& sent) {
  zmq::message_t frame = encode(sent);
  const wire::Envelope* envelope = nullptr;
  EXPECT_TRUE(decode_envelope(frame, Limits{}, envelope).is_ok());
  Message got;
  if constexpr (std::is_same_v<Message, WorkerHello>) {
    EXPECT_TRUE(decode(*envelope, Limits{}, got).is_ok());
  } else {
    EXPECT_TRUE(decode(*envelope, got).is_ok());
  }
  return got;
}

TEST(Protocol, WorkerHelloRoundTripsAndIsBounded) {
  WorkerHello hello{.worker_id = "gpu-host-0",
                    .incarnation = 0xfeedfacecafebeefull,
                    .device = {.kind = DeviceKind::kCuda, .name = "NVIDIA H200", .total_memory_bytes = 1ull << 37},
                    .kernels = {"matmul", "vector_add"},
                    .slots = 4,
                    .heartbeat_ms = 250,
                    .prefetch = 3,
                    .connection = 5,
                    .running = {41, 1ull << 60}};
  const WorkerHello got = round_trip(hello);
  EXPECT_EQ(got.worker_id, hello.worker_id);
  EXPECT_EQ(got.incarnation, hello.incarnation);
  EXPECT_EQ(got.device.kind, DeviceKind::kCuda);
  EXPECT_EQ(got.device.name, "NVIDIA H200");
  EXPECT_EQ(got.device.total_memory_bytes, 1ull << 37);
  EXPECT_EQ(got.kernels, hello.kernels);
  EXPECT_EQ(got.slots, 4u);
  EXPECT_EQ(got.heartbeat_ms, 250u);
  EXPECT_EQ(got.prefetch, 3u);
  EXPECT_EQ(got.connection, 5u);
  EXPECT_EQ(got.running, hello.running);

  hello.slots = 0;
  hello.heartbeat_ms = 1;
  hello.prefetch = 1u << 31;  // a worker cannot make the broker send it without bound
  const WorkerHello clamped = round_trip(hello);
  EXPECT_EQ(clamped.slots, 1u);
  EXPECT_EQ(clamped.heartbeat_ms, 10u);
  EXPECT_EQ(clamped.prefetch, WorkerHello::kMaxPrefetch);

  Limits limits;
  limits.max_name_bytes = 8;
  hello.kernels = {"a_kernel_name_too_long"};
  zmq::message_t frame = encode(hello);
  const wire::Envelope* envelope = nullptr;
  ASSERT_TRUE(decode_envelope(frame, limits, envelope).is_ok());
  WorkerHello refused;
  const Status s = decode(*envelope, limits, refused);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("max_name_bytes 8"), std::string::npos) << s.message();

  hello.kernels.assign(WorkerHello::kMaxKernels + 1, "k");
  frame = encode(hello);
  ASSERT_TRUE(decode_envelope(frame, Limits{}, envelope).is_ok());
  EXPECT_NE(decode(*envelope, Limits{}, refused).message().find("at most 1024"), std::string::npos);

  // The broker knows a worker by its id: named, and bounded like any name.
  hello.kernels = {"k"};
  for (const std::string& id : {std::string(), std::string(9, 'w')}) {
    hello.worker_id = id;
    frame = encode(hello);
    ASSERT_TRUE(decode_envelope(frame, limits, envelope).is_ok());
    EXPECT_NE(decode(*envelope, limits, refused).message().find("a worker id of " + std::to_string(id.size())),
              std::string::npos);
  }
  // No worker holds more than its slots and prefetch allow.
  hello.worker_id = "w";
  hello.running.assign(WorkerHello::kMaxSlots + WorkerHello::kMaxPrefetch + 1, 1);
  Limits large_headers;
  large_headers.max_header_bytes = 1 << 20;  // the default's 64 KiB would refuse it first
  frame = encode(hello);
  ASSERT_TRUE(decode_envelope(frame, large_headers, envelope).is_ok());
  EXPECT_NE(decode(*envelope, large_headers, refused).message().find("running dispatches listed"), std::string::npos);
}

TEST(Protocol, HeartbeatsCarryMetricsOrAnAnnouncement) {
  const Heartbeat with_metrics =
      round_trip(Heartbeat{.inflight = 3, .metrics = DeviceMetrics{.free_memory_bytes = 42, .utilization_percent = 7}});
  EXPECT_EQ(with_metrics.inflight, 3u);
  ASSERT_TRUE(with_metrics.metrics.has_value());
  EXPECT_EQ(with_metrics.metrics->free_memory_bytes, 42);
  EXPECT_EQ(with_metrics.metrics->utilization_percent, 7);
  EXPECT_EQ(with_metrics.incoming_bytes, 0u);
  const Heartbeat announcement = round_trip(Heartbeat{.inflight = 1, .incoming_bytes = 64ull << 20});
  EXPECT_FALSE(announcement.metrics.has_value());
  EXPECT_EQ(announcement.incoming_bytes, 64ull << 20);
}

TEST(Protocol, TheSmallMessagesRoundTrip) {
  EXPECT_EQ(round_trip(Goodbye{"shutting down"}).reason, "shutting down");
  EXPECT_EQ(round_trip(Reregister{"unknown worker"}).reason, "unknown worker");
  EXPECT_EQ(round_trip(Deactivate{"alice/model-7"}).actor, "alice/model-7");
  const Cancel cancel = round_trip(Cancel{77, StatusCode::kDeadlineExceeded});
  EXPECT_EQ(cancel.dispatch_id, 77u);
  EXPECT_EQ(cancel.reason, StatusCode::kDeadlineExceeded);
  EXPECT_EQ(round_trip(Cancel{78, StatusCode::kInternal}).reason, StatusCode::kCancelled);
  EXPECT_EQ(round_trip(Ping{9}).request_id, 9u);
  const Pong pong = round_trip(Pong{9, "broker-a", 123456789});
  EXPECT_EQ(pong.request_id, 9u);
  EXPECT_EQ(pong.broker_id, "broker-a");
  EXPECT_EQ(pong.incarnation, 123456789u);
  EXPECT_EQ(round_trip(CancelRequest{5}).job_id, 5u);
  EXPECT_EQ(round_trip(StatusRequest{6}).request_id, 6u);
  const QuotaRequest quota = round_trip(QuotaRequest{7, "bob"});
  EXPECT_EQ(quota.request_id, 7u);
  EXPECT_EQ(quota.tenant, "bob");
  const ActorRequest actor = round_trip(ActorRequest{8, "alice", "model-7"});
  EXPECT_EQ(actor.request_id, 8u);
  EXPECT_EQ(actor.tenant, "alice");
  EXPECT_EQ(actor.actor_id, "model-7");
}

TEST(Protocol, ADecoderRefusesAnotherBodyNamingBoth) {
  zmq::message_t frame = encode(Ping{1});
  const wire::Envelope* envelope = nullptr;
  ASSERT_TRUE(decode_envelope(frame, Limits{}, envelope).is_ok());
  Pong pong;
  const Status s = decode(*envelope, pong);
  EXPECT_EQ(s.code(), StatusCode::kMalformedMessage);
  EXPECT_NE(s.message().find("expected a Pong, got a Ping"), std::string::npos) << s.message();
}


TEST(Protocol, RepliesRoundTrip) {
  StatusReply status{.request_id = 3,
                     .fleet = {.broker_id = "broker-a",
                               .workers = {{.id = "w1",
                                            .device = {.kind = DeviceKind::kCpu, .name = "EPYC"},
                                            .kernels = {"passthrough"},
                                            .slots = 4,
                                            .inflight = 2,
                                            .since_heartbeat = std::chrono::milliseconds(150),
                                            .completed = 99,
                                            .metrics = {.free_memory_bytes = 5}}},
                               .queued_jobs = 7,
                               .inflight_jobs = 2,
                               .redis_connected = true,
                               .default_timeout_ms = 30000}};
  const StatusReply got = round_trip(status);
  EXPECT_EQ(got.request_id, 3u);
  EXPECT_EQ(got.fleet.broker_id, "broker-a");
  ASSERT_EQ(got.fleet.workers.size(), 1u);
  EXPECT_EQ(got.fleet.workers[0].kernels, std::vector<std::string>{"passthrough"});
  EXPECT_EQ(got.fleet.workers[0].since_heartbeat.count(), 150);
  EXPECT_EQ(got.fleet.workers[0].completed, 99u);
  EXPECT_EQ(got.fleet.workers[0].metrics.free_memory_bytes, 5);
  EXPECT_EQ(got.fleet.queued_jobs, 7u);
  EXPECT_TRUE(got.fleet.redis_connected);
  EXPECT_EQ(got.fleet.default_timeout_ms, 30000u);

  QuotaReply quota{
      .request_id = 4,
      .report = {.tenants = {{.tenant = "alice", .max_inflight_jobs = 8, .rate = 2.5, .inflight_jobs = -1}},
                 .tenants_file = "tenants.yaml",
                 .loaded_at_unix_ms = 12345}};
  QuotaReply quota_got = round_trip(quota);
  EXPECT_TRUE(quota_got.error.is_ok());
  ASSERT_EQ(quota_got.report.tenants.size(), 1u);
  EXPECT_EQ(quota_got.report.tenants[0].tenant, "alice");
  EXPECT_EQ(quota_got.report.tenants[0].rate, 2.5);
  EXPECT_EQ(quota_got.report.tenants[0].inflight_jobs, -1);
  EXPECT_EQ(quota_got.report.loaded_at_unix_ms, 12345);
  quota.error = Status(StatusCode::kPermissionDenied, "another tenant's");
  quota_got = round_trip(quota);
  EXPECT_EQ(quota_got.error.code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(quota_got.error.message(), "another tenant's");

  ActorReply actor{.request_id = 5};
  actor.actor.found = true;
  actor.actor.version = 11;
  actor.actor.worker_id = "w1";
  actor.actor.resident = {{.name = "weights", .dtype = DType::kF32, .shape = {2, 3}, .bytes = 24}};
  actor.actor.resident_bytes = 24;
  const ActorReply actor_got = round_trip(actor);
  EXPECT_TRUE(actor_got.status.is_ok());
  EXPECT_TRUE(actor_got.actor.found);
  EXPECT_EQ(actor_got.actor.version, 11u);
  ASSERT_EQ(actor_got.actor.resident.size(), 1u);
  EXPECT_EQ(actor_got.actor.resident[0].name, "weights");
  EXPECT_EQ(actor_got.actor.resident[0].shape, (Shape{2, 3}));
  EXPECT_EQ(actor_got.actor.resident[0].bytes, 24u);
}

// An inline output (its bytes in the header) has no frame.
TEST(FrameLayouts, AResultsFramesAreItsOutputsThenItsKeptTensors) {
  flatbuffers::FlatBufferBuilder fbb;
  const Tensor t = Tensor::zeros(DType::kF32, {2});
  std::vector<flatbuffers::Offset<wire::TensorDesc>> outputs{add_tensor_desc(fbb, t, true), add_tensor_desc(fbb, t)};
  std::vector<flatbuffers::Offset<wire::TensorDesc>> kept{add_tensor_desc(fbb, t), add_tensor_desc(fbb, t)};
  auto outputs_vector = fbb.CreateVector(outputs);
  auto kept_vector = fbb.CreateVector(kept);
  wire::JobResultBuilder builder(fbb);
  builder.add_outputs(outputs_vector);
  builder.add_kept(kept_vector);
  fbb.Finish(wire::CreateEnvelope(fbb, kProtocolVersion, wire::Body::JobResult, builder.Finish().Union()));
  const auto* result = flatbuffers::GetRoot<wire::Envelope>(fbb.GetBufferPointer())->body_as_JobResult();
  const ResultLayout layout = ResultLayout::of(*result);
  EXPECT_EQ(layout.returned, 1u);
  EXPECT_EQ(layout.kept, 2u);
  EXPECT_TRUE(layout.check(3).is_ok());
  EXPECT_EQ(layout.check(0).code(), StatusCode::kMalformedMessage);
  EXPECT_NE(layout.check(2).message().find("2 frames for 1 outputs not inline and 2 kept tensors"), std::string::npos);
  Frames payload(3);
  payload[0] = zmq::message_t(std::string("out"));
  payload[2] = zmq::message_t(std::string("kept-2"));
  EXPECT_EQ(layout.returned_frames(payload)[0].to_string(), "out");
  ASSERT_EQ(layout.kept_frames(payload).size(), 2u);
  EXPECT_EQ(layout.kept_frames(payload)[1].to_string(), "kept-2");
}

TEST(FrameLayouts, ADispatchCarriesOnlyTheInputsThatAreNotResident) {
  JobRequest request{.kernel = "vector_add", .inputs = {Tensor::zeros(DType::kF32, {2})}};
  Frames frames = encode_request(request, 1, "alice", std::chrono::milliseconds(1000));
  const auto* header = flatbuffers::GetRoot<wire::Envelope>(frames[0].data())->body_as_JobRequest();
  const DispatchLayout layout = DispatchLayout::of(*header, false);
  EXPECT_EQ(layout.framed_inputs, 1u);
  EXPECT_TRUE(layout.check(2).is_ok());  // [request][input]
  EXPECT_EQ(layout.check(1).code(), StatusCode::kMalformedMessage);
  Frames after_dispatch(4);  // [request][input][two activation tensors]
  EXPECT_EQ(layout.input_frames(after_dispatch).size(), 1u);
  EXPECT_EQ(layout.activation_frames(after_dispatch).size(), 2u);
  // Sent with inputs of up to 8 bytes inline: the first is in the header, the second has its frame.
  request.inputs.push_back(Tensor::zeros(DType::kF32, {3}));
  frames = encode_request(request, 1, "alice", std::chrono::milliseconds(1000), 0, 8);
  ASSERT_EQ(frames.size(), 2u);
  const auto* mixed = flatbuffers::GetRoot<wire::Envelope>(frames[0].data())->body_as_JobRequest();
  EXPECT_EQ(DispatchLayout::of(*mixed, false).framed_inputs, 1u);
  // With the request's header inside the Dispatch, the input frames come first.
  const DispatchLayout embedded = DispatchLayout::of(*mixed, true);
  EXPECT_TRUE(embedded.check(1).is_ok());  // [input]
  EXPECT_EQ(embedded.check(0).code(), StatusCode::kMalformedMessage);
  Frames after_embedding(3);  // [input][two activation tensors]
  after_embedding[0] = zmq::message_t(std::string("input"));
  EXPECT_EQ(embedded.input_frames(after_embedding)[0].to_string(), "input");
  EXPECT_EQ(embedded.activation_frames(after_embedding).size(), 2u);
  EXPECT_EQ(mixed->inline_outputs(), 8u);
  EXPECT_EQ(frames[1].size(), 12u);
}

// Outputs of a result may be inline (choose_inline: small ones, within a budget): no frames for
// them, and the client's decoder gives them back with the others, in order.
TEST(ProtocolJobs, InlineOutputsTravelInTheHeaderAndReadBackInOrder) {
  const std::vector<Tensor> returned{Tensor::from<double>(std::vector<double>{1.5, -2}, {2}, "small"),
                                     Tensor::from<float>(std::vector<float>(100, 7.0f), {100}, "large"),
                                     Tensor::zeros(DType::kU8, {0}, "empty")};
  const std::vector<bool> inlined = choose_inline(returned, 64);
  EXPECT_EQ(inlined, (std::vector<bool>{true, false, true}));
  EXPECT_EQ(choose_inline(returned, 4096, 100), (std::vector<bool>{true, false, true})) << "over the budget";
  EXPECT_EQ(choose_inline(returned, 0), (std::vector<bool>{false, false, false}));
  const DeviceInfo device{.kind = DeviceKind::kCpu, .name = "cpu"};
  zmq::message_t frame = encode(ResultHeader{.dispatch_id = 5,
                                             .status = Status(StatusCode::kOk, ""),
                                             .returned = returned,
                                             .inline_returned = inlined,
                                             .worker_id = "w1",
                                             .device = &device});
  const wire::Envelope* envelope = nullptr;
  ASSERT_TRUE(decode_envelope(frame, Limits{}, envelope).is_ok());
  const auto* header = envelope->body_as_JobResult();
  const auto* data = header->outputs()->Get(0)->data();
  ASSERT_NE(data, nullptr);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(data->data()) % 8, 0u) << "aligned for its dtype, in place";
  EXPECT_EQ(ResultLayout::of(*header).returned, 1u);
  Frames payload;
  payload.push_back(tensor_to_frame(returned[1]));
  JobResult result;
  ASSERT_TRUE(decode_result(*header, payload, Limits{}, result).is_ok());
  ASSERT_EQ(result.outputs.size(), 3u);
  EXPECT_EQ(result.outputs[0].name(), "small");
  EXPECT_EQ(result.outputs[0].values<double>()[0], 1.5);
  EXPECT_EQ(result.outputs[0].values<double>()[1], -2.0);
  EXPECT_EQ(result.outputs[1].values<float>()[99], 7.0f);
  EXPECT_EQ(result.outputs[2].shape(), (Shape{0}));
  // A frame too many, or one missing, is refused.
  payload.clear();
  EXPECT_EQ(decode_result(*header, payload, Limits{}, result).code(), StatusCode::kMalformedMessage);
}

TEST(ProtocolJobs, AResultHeaderReadsBackThroughTheClientsDecoderAndCanBeRewrittenInPlace) {
  const DeviceInfo device{.kind = DeviceKind::kCuda, .name = "NVIDIA H200"};
  const std::vector<Tensor> returned{Tensor::from<float>(std::vector<float>{1, 2, 3}, {3}, "c")};
  const std::vector<Tensor> kept{Tensor::zeros(DType::kF32, {2}, "state")};
  ResultHeader header{.dispatch_id = 41,
                      .status = Status(StatusCode::kOk, ""),
                      .returned = returned,
                      .kept = kept,
                      .worker_id = "w1",
                      .device = &device,
                      .fallback_reason = "",
                      .transfer_us = 5,
                      .compute_us = 7,
                      .stages = {{"resize", std::chrono::microseconds(3)}, {"blur", std::chrono::microseconds(4)}},
                      .batch_size = 2,
                      .actor_version = 9};
  zmq::message_t frame = encode(header);
  const wire::Envelope* envelope = nullptr;
  ASSERT_TRUE(decode_envelope(frame, Limits{}, envelope).is_ok());
  auto* mutable_result = static_cast<wire::JobResult*>(wire::GetMutableEnvelope(frame.data())->mutable_body());
  EXPECT_TRUE(mutable_result->mutate_job_id(1234)) << "job_id is present for the broker to rewrite";
  ASSERT_NE(mutable_result->mutable_timings(), nullptr);
  Frames payload;
  payload.push_back(tensor_to_frame(returned[0]));
  JobResult result;
  ASSERT_TRUE(decode_result(*envelope->body_as_JobResult(), payload, Limits{}, result).is_ok());
  EXPECT_EQ(result.job_id, 1234u);
  EXPECT_EQ(result.worker_id, "w1");
  EXPECT_EQ(result.device_kind, DeviceKind::kCuda);
  EXPECT_EQ(result.device_name, "NVIDIA H200");
  EXPECT_EQ(result.timings.transfer.count(), 5);
  EXPECT_EQ(result.timings.compute.count(), 7);
  ASSERT_EQ(result.stage_timings.size(), 2u);
  EXPECT_EQ(result.stage_timings[1].kernel, "blur");
  EXPECT_EQ(result.batch_size, 2);
  EXPECT_EQ(result.kept, std::vector<std::string>{"state"});
  EXPECT_EQ(result.actor_version, 9u);
  ASSERT_EQ(result.outputs.size(), 1u);
  EXPECT_EQ(result.outputs[0].values<float>()[2], 3.f);
  EXPECT_EQ(ResultLayout::of(*envelope->body_as_JobResult()).kept, 1u);
}

TEST(ProtocolJobs, ADispatchHeaderSaysWhatTheWorkerNeeds) {
  const std::vector<Tensor> activation{Tensor::zeros(DType::kF32, {4}, "weights")};
  zmq::message_t frame = encode(DispatchHeader{.dispatch_id = 8,
                                               .deadline_ms = 250,
                                               .actor = "alice/model-7",
                                               .actor_version = 3,
                                               .activate = true,
                                               .activation = activation,
                                               .tenant = "alice"});
  const wire::Envelope* envelope = nullptr;
  ASSERT_TRUE(decode_envelope(frame, Limits{}, envelope).is_ok());
  const auto* dispatch = envelope->body_as_Dispatch();
  ASSERT_NE(dispatch, nullptr);
  EXPECT_EQ(dispatch->dispatch_id(), 8u);
  EXPECT_EQ(dispatch->deadline_ms(), 250u);
  EXPECT_EQ(view(dispatch->actor()), "alice/model-7");
  EXPECT_EQ(dispatch->actor_version(), 3u);
  EXPECT_TRUE(dispatch->activate());
  ASSERT_NE(dispatch->activation(), nullptr);
  EXPECT_EQ(view(dispatch->activation()->Get(0)->name()), "weights");
  EXPECT_EQ(view(dispatch->tenant()), "alice");
  zmq::message_t plain = encode(DispatchHeader{.dispatch_id = 9});
  ASSERT_TRUE(decode_envelope(plain, Limits{}, envelope).is_ok());
  EXPECT_EQ(envelope->body_as_Dispatch()->actor(), nullptr);
  EXPECT_EQ(envelope->body_as_Dispatch()->activation(), nullptr);
  EXPECT_EQ(envelope->body_as_Dispatch()->request(), nullptr);
  EXPECT_EQ(envelope->body_as_Dispatch()->tenant(), nullptr);
}

// A small request's header rides inside its Dispatch, aligned, and verifies there as it would as a
// frame; bytes that are not a header are refused the same way.
TEST(ProtocolJobs, ARequestHeaderInsideADispatchReadsBackInPlace) {
  Frames request = encode_request({.kernel = "passthrough", .inputs = {Tensor::vector<float>({1, 2})}}, 77, "alice",
                                  std::chrono::milliseconds(1000), 0, kDefaultInlineBytes);
  ASSERT_EQ(request.size(), 1u);
  const std::span bytes(static_cast<const std::uint8_t*>(request[0].data()), request[0].size());
  zmq::message_t frame = encode(DispatchHeader{.dispatch_id = 10, .request = bytes});
  const wire::Envelope* envelope = nullptr;
  ASSERT_TRUE(decode_envelope(frame, Limits{}, envelope).is_ok());
  const auto* inside = envelope->body_as_Dispatch()->request();
  ASSERT_NE(inside, nullptr);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(inside->data()) % 8, 0u);
  const wire::Envelope* request_envelope = nullptr;
  ASSERT_TRUE(verify_envelope({inside->data(), inside->size()}, Limits{}, request_envelope).is_ok());
  ASSERT_NE(request_envelope->body_as_JobRequest(), nullptr);
  EXPECT_EQ(request_envelope->body_as_JobRequest()->job_id(), 77u);
  EXPECT_EQ(DispatchLayout::of(*request_envelope->body_as_JobRequest(), true).framed_inputs, 0u);
  const std::vector<std::uint8_t> junk(64, 0x5a);
  EXPECT_EQ(verify_envelope(junk, Limits{}, request_envelope).code(), StatusCode::kMalformedMessage);
  Limits small;
  small.max_header_bytes = 16;
  EXPECT_EQ(verify_envelope({inside->data(), inside->size()}, small, request_envelope).code(), StatusCode::kTooLarge);
}

}  // namespace
}  // namespace bridge::core::protocol
