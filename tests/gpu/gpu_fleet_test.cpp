// A fleet with a GPU worker: jobs report where they ran, placement hints hold, fallbacks say why.
// Label `gpu`; skips, saying why, when no usable CUDA device is present.
#include <gtest/gtest.h>

#include "bridge/actor.hpp"
#include "bridge/worker/cpu_backend.hpp"
#include "fleet.hpp"
#include "gpu_test_support.hpp"

namespace bridge::testing {
namespace {

class GpuFleet : public ::testing::Test {
 protected:
  void SetUp() override {
    worker::CudaBackendOptions probe;
    probe.cpu = std::make_shared<worker::CpuBackend>(worker::CpuBackend::Options{1});
    std::string why;
    if (!worker::load_cuda_backend(cuda_plugin_path(), probe, why)) GTEST_SKIP() << "no usable CUDA device: " << why;
    FleetOptions options;
    options.workers = 1;  // a CPU worker; the test adds a GPU worker beside it
    options.slots = 4;
    fleet_ = std::make_unique<Fleet>(options);
  }
  std::unique_ptr<Fleet> fleet_;
};

TEST_F(GpuFleet, PlacementHintsDecideTheDeviceAndResultsSayIt) {
  TempDir dir;
  const char* worker_bin = std::getenv("BRIDGE_WORKER_BIN");
  Process gpu({worker_bin ? worker_bin : BRIDGE_TEST_WORKER_BIN, "--broker", fleet_->backend(), "--device", "cuda:0",
               "--slots", "4", "--id", "gpu-worker", "--cuda-plugin", cuda_plugin_path()},
              (dir.path() / "gpu-worker.log").string());
  Client client(fleet_->client_options());
  ASSERT_TRUE(eventually(
      [&] {
        FleetStatus s;
        if (!client.status(s).is_ok()) return false;
        return std::any_of(s.workers.begin(), s.workers.end(), [](const WorkerInfo& w) {
          return w.id == "gpu-worker" && w.device.kind == DeviceKind::kCuda;
        });
      },
      std::chrono::seconds(20)))
      << gpu.log();
  const JobRequest add{.kernel = "vector_add",
                       .inputs = {Tensor::vector<float>({1, 2}), Tensor::vector<float>({3, 4})}};

  JobRequest required = add;
  required.placement = Placement::kRequireGpu;
  JobResult r = client.run(required);
  ASSERT_TRUE(r.ok()) << r.status.to_string();
  EXPECT_EQ(r.device_kind, DeviceKind::kCuda);
  EXPECT_EQ(r.worker_id, "gpu-worker");
  EXPECT_EQ(r.outputs[0].values<float>()[1], 6.0f);

  JobRequest cpu_only = add;
  cpu_only.placement = Placement::kCpuOnly;
  r = client.run(cpu_only);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.device_kind, DeviceKind::kCpu);
  EXPECT_NE(r.worker_id, "gpu-worker");

  JobRequest sleep{.kernel = "sleep", .params = {{"ms", 1}}, .placement = Placement::kRequireGpu};
  r = client.run(sleep);
  ASSERT_TRUE(r.ok()) << r.status.to_string();
  EXPECT_EQ(r.worker_id, "gpu-worker");
  EXPECT_EQ(r.device_kind, DeviceKind::kCpu);
  EXPECT_NE(r.fallback_reason.find("no GPU implementation"), std::string::npos) << r.fallback_reason;

  // A pipeline and an actor with resident weights, on the GPU worker.
  JobRequest piped = Pipeline{}.then("resize", {{"height", 64}, {"width", 64}}).then("blur", {{"sigma", 1}})
                         .then("normalize", {{"scale", 2}}).request({Tensor::zeros(DType::kF32, {128, 128, 3})});
  piped.placement = Placement::kRequireGpu;
  r = client.run(piped);
  ASSERT_TRUE(r.ok()) << r.status.to_string();
  EXPECT_EQ(r.device_kind, DeviceKind::kCuda) << r.fallback_reason;
  EXPECT_EQ(r.stage_timings.size(), 3u);

  Actor model(client, "", "gpu-model");
  Tensor w = Tensor::zeros(DType::kF32, {64, 64});
  for (std::int64_t i = 0; i < 64; ++i) w.mutable_values<float>()[static_cast<std::size_t>(i * 64 + i)] = 2;  // 2·I
  ASSERT_TRUE(model.call({.kernel = "passthrough", .args = {w}, .keep = {"w"}, .placement = Placement::kRequireGpu})
                  .get()
                  .ok());
  for (int call = 0; call < 3; ++call) {
    Tensor x = Tensor::zeros(DType::kF32, {4, 64});
    for (float& v : x.mutable_values<float>()) v = static_cast<float>(call + 1);
    r = model.call({.kernel = "matmul", .args = {x, Resident{"w"}}, .placement = Placement::kRequireGpu}).get();
    ASSERT_TRUE(r.ok()) << r.status.to_string();
    EXPECT_EQ(r.device_kind, DeviceKind::kCuda) << r.fallback_reason;
    EXPECT_FLOAT_EQ(r.outputs[0].values<float>()[5], 2.0f * static_cast<float>(call + 1));
  }

  FleetStatus s;
  ASSERT_TRUE(client.status(s).is_ok());
  for (const auto& info : s.workers)
    if (info.id == "gpu-worker") {
      EXPECT_GT(info.metrics.free_memory_bytes, 0);
      EXPECT_GT(info.metrics.pool_misses, 0u);
      EXPECT_GE(info.metrics.pool_bytes_in_use, 64 * 64 * 4) << "the actor's weights stay on the device";
    }
}

}  // namespace
}  // namespace bridge::testing
