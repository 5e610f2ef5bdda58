// Writes the seed corpus of the fuzz targets: one valid message of each kind (tests/fuzz/corpus/wire)
// and valid texts (tests/fuzz/corpus/config). Run once after a schema change:
//   build/tests/fuzz_make_seeds tests/fuzz/corpus
#include <filesystem>
#include <fstream>
#include <iostream>

#include "bridge/core/batch.hpp"
#include "bridge/core/job_codec.hpp"
#include "bridge/core/protocol_jobs.hpp"
#include "fuzz_frames.hpp"

namespace {

using namespace bridge;

void write(const std::filesystem::path& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
  std::cout << path.string() << " (" << bytes.size() << " bytes)\n";
}

core::Frames one(flatbuffers::FlatBufferBuilder& fbb, wire::Body type, flatbuffers::Offset<void> body) {
  core::Frames frames;
  frames.push_back(core::finish_envelope(fbb, type, body));
  return frames;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: fuzz_make_seeds CORPUS_DIR\n";
    return 2;
  }
  const std::filesystem::path wire_dir = std::filesystem::path(argv[1]) / "wire";
  const std::filesystem::path config_dir = std::filesystem::path(argv[1]) / "config";
  std::filesystem::create_directories(wire_dir);
  std::filesystem::create_directories(config_dir);
  auto save = [&](const char* name, const core::Frames& frames) { write(wire_dir / name, fuzz::join_frames(frames)); };

  const Tensor a = Tensor::vector<float>({1, 2, 3}, "a"), m = Tensor::from<float>(std::vector<float>(6, 1.0f), {2, 3});
  save("job_request",
       core::encode_request({.kernel = "vector_add", .inputs = {a, a}}, 1, "default", std::chrono::seconds(1)));
  save("pipeline_request", core::encode_request(Pipeline{}
                                                    .then("resize", {{"height", 2}, {"width", 2}})
                                                    .then("blur", {{"sigma", 1}})
                                                    .request({Tensor::zeros(DType::kF32, {4, 4, 3})}),
                                                2, "default", std::chrono::seconds(1)));
  save("inline_request", core::encode_request({.kernel = "passthrough", .inputs = {a, m}}, 4, "default",
                                              std::chrono::seconds(1), 0, 12));  // a inline, m in a frame
  {
    const DeviceInfo device{.kind = DeviceKind::kCpu, .name = "cpu"};
    const std::vector<Tensor> returned{a, m};
    core::Frames frames;
    frames.push_back(core::protocol::encode(core::protocol::ResultHeader{.dispatch_id = 4,
                                                                         .returned = returned,
                                                                         .inline_returned = {false, true},
                                                                         .worker_id = "w",
                                                                         .device = &device}));
    frames.push_back(core::tensor_to_frame(a));
    save("inline_result", frames);
    // A dispatch with the request's header inside it, then the request's framed input.
    const core::Frames request =
        core::encode_request({.kernel = "passthrough", .inputs = {a, m}}, 5, "default", std::chrono::seconds(1), 0, 12);
    core::Frames dispatch;
    dispatch.push_back(core::protocol::encode(core::protocol::DispatchHeader{
        .dispatch_id = 5, .request = {static_cast<const std::uint8_t*>(request[0].data()), request[0].size()}}));
    dispatch.push_back(core::tensor_to_frame(m));
    save("dispatch_embedded", dispatch);
  }
  JobRequest actor_call{.kernel = "matmul", .inputs = {m, Tensor()}, .actor_id = "model"};
  actor_call.resident_inputs = {"", "weights"};
  actor_call.keep_outputs = {"y"};
  save("actor_request", core::encode_request(actor_call, 3, "default", std::chrono::seconds(1)));
  {
    flatbuffers::FlatBufferBuilder fbb;
    fbb.ForceDefaults(true);
    std::vector<flatbuffers::Offset<wire::TensorDesc>> outputs{core::add_tensor_desc(fbb, a)};
    std::vector<flatbuffers::Offset<wire::TensorDesc>> kept{core::add_tensor_desc(fbb, m)};
    std::vector<flatbuffers::Offset<wire::StageTiming>> stages{
        wire::CreateStageTiming(fbb, fbb.CreateString("resize"), 5)};
    const wire::Timings timings(1, 2, 3);
    auto body = wire::CreateJobResult(fbb, 1, wire::StatusCode::OK, fbb.CreateString(""), fbb.CreateVector(outputs),
                                      fbb.CreateString("w"), wire::DeviceKind::Cpu, fbb.CreateString("cpu"), 0,
                                      &timings, 0, 1, fbb.CreateVector(stages), 2, fbb.CreateVector(kept), 4);
    core::Frames frames = one(fbb, wire::Body::JobResult, body.Union());
    frames.push_back(core::tensor_to_frame(a));
    frames.push_back(core::tensor_to_frame(m));
    save("job_result", frames);
  }
  {
    flatbuffers::FlatBufferBuilder fbb;
    std::vector<flatbuffers::Offset<wire::TensorDesc>> activation{core::add_tensor_desc(fbb, m)};
    auto body =
        wire::CreateDispatch(fbb, 9, 1000, fbb.CreateString("default/model"), 3, true, fbb.CreateVector(activation));
    core::Frames frames = one(fbb, wire::Body::Dispatch, body.Union());
    frames.push_back(core::tensor_to_frame(m));
    save("dispatch", frames);
  }
  {
    flatbuffers::FlatBufferBuilder fbb;
    DeviceInfo device;
    device.name = "cpu";
    std::vector<flatbuffers::Offset<flatbuffers::String>> kernels{fbb.CreateString("vector_add")};
    auto body = wire::CreateWorkerHello(fbb, fbb.CreateString("w"), 7, core::add_device_info(fbb, device),
                                        fbb.CreateVector(kernels), 4, 1000, 0, 2,
                                        fbb.CreateVector(std::vector<std::uint64_t>{11, 12}));
    save("worker_hello", one(fbb, wire::Body::WorkerHello, body.Union()));
  }
  {
    flatbuffers::FlatBufferBuilder fbb;
    auto body = wire::CreateHeartbeat(fbb, 2, core::add_device_metrics(fbb, DeviceMetrics{}));
    save("heartbeat", one(fbb, wire::Body::Heartbeat, body.Union()));
  }
  {
    flatbuffers::FlatBufferBuilder fbb;
    std::vector<flatbuffers::Offset<flatbuffers::String>> kernels{fbb.CreateString("sleep")};
    std::vector<flatbuffers::Offset<wire::WorkerStatus>> workers{wire::CreateWorkerStatus(
        fbb, fbb.CreateString("w"), core::add_device_info(fbb, {}), fbb.CreateVector(kernels), 4, 1, 10, 99,
        core::add_device_metrics(fbb, {}))};
    auto body = wire::CreateStatusReply(fbb, 5, fbb.CreateString("b"), fbb.CreateVector(workers), 1, 2, true);
    save("status_reply", one(fbb, wire::Body::StatusReply, body.Union()));
  }
  {
    flatbuffers::FlatBufferBuilder fbb;
    std::vector<flatbuffers::Offset<flatbuffers::String>> kernels{fbb.CreateString("sleep")};
    std::vector<flatbuffers::Offset<wire::TenantQuotaStatus>> rows{wire::CreateTenantQuotaStatus(
        fbb, fbb.CreateString("t"), 64, 1024, 10, 10, 1, -1, 1, fbb.CreateVector(kernels), 3, 30, 2.5, 4096)};
    auto body = wire::CreateQuotaReply(fbb, 6, fbb.CreateVector(rows), fbb.CreateString("tenants.yaml"), 1, 0);
    save("quota_reply", one(fbb, wire::Body::QuotaReply, body.Union()));
  }
  {
    flatbuffers::FlatBufferBuilder fbb;
    std::vector<flatbuffers::Offset<wire::TensorDesc>> resident{core::add_tensor_desc(fbb, m)};
    auto body = wire::CreateActorReply(fbb, 8, wire::StatusCode::OK, fbb.CreateString(""), true, 3,
                                       fbb.CreateString("w"), fbb.CreateVector(resident), 24, 24, 1);
    save("actor_reply", one(fbb, wire::Body::ActorReply, body.Union()));
  }
  {
    flatbuffers::FlatBufferBuilder fbb;
    auto body = wire::CreatePong(fbb, 1, fbb.CreateString("b"), 42);
    save("pong", one(fbb, wire::Body::Pong, body.Union()));
  }
  {
    // Results of one wake-up in one message (docs/protocol.md, "Batches").
    core::BatchWriter batch;
    batch.add(core::make_error_result(7, Status(StatusCode::kCancelled, "cancelled")));
    batch.add(std::move(core::encode_request({.kernel = "passthrough", .inputs = {a}}, 8, "t", std::chrono::seconds(1),
                                             0, 4096, true)[0]));
    core::Frames frames;
    frames.push_back(batch.take());
    save("batch", frames);
  }

  write(config_dir / "tenants",
        "defaults:\n  max_inflight_jobs: 64\n  weight: 1\ntenants:\n  a:\n    rate: 10\n    burst: 5\n"
        "    kernels: [vector_add, sleep]\n  b:\n    min_priority: -5\n    max_priority: 5\n"
        "    max_resident_bytes: 1024\n");
  write(config_dir / "tensor_meta", "f32 2,3,4");
  write(config_dir / "redis_url", "redis://:secret@127.0.0.1:6380/2");
  write(config_dir / "placement", "prefer-gpu");
  return 0;
}
