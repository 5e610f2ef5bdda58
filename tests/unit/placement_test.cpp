// The seed's device score and how placement hints rank workers.
#include <gtest/gtest.h>

#include "bridge/broker/placement.hpp"

namespace bridge::broker {
namespace {

// A job for occupying a credit; JobTable owns jobs in the broker, the registry only points at them.
Job& idle_job() {
  static Job job;
  return job;
}

WorkerRecord gpu(std::int64_t free_bytes, float temperature, int cc_major, std::uint32_t slots = 4) {
  WorkerRecord w;
  w.id = "gpu";
  w.slots = slots;
  w.device.kind = DeviceKind::kCuda;
  w.device.total_memory_bytes = 100;
  w.device.compute_capability_major = cc_major;
  w.metrics.free_memory_bytes = free_bytes;
  w.metrics.temperature_c = temperature;
  return w;
}

TEST(Placement, DeviceScoreWeighsMemoryQueueTemperatureAndCapability) {
  // Idle, all memory free, 0 °C, capability 10+: every term is 1.
  EXPECT_DOUBLE_EQ(device_score(gpu(100, 0, 10)), 1.0);
  // Half the memory (0.4×0.5), idle (0.3), 45 °C (0.2×0.5), cc 9 (0.1×0.9).
  EXPECT_DOUBLE_EQ(device_score(gpu(50, 45, 9)), 0.2 + 0.3 + 0.1 + 0.09);
  WorkerRecord busy = gpu(100, 0, 10, 4);
  for (std::uint64_t i = 0; i < 3; ++i) busy.inflight.emplace(i, &idle_job());
  EXPECT_DOUBLE_EQ(device_score(busy), 1.0 - 0.3 * 0.75);
  // Hotter than 90 °C does not go negative.
  EXPECT_DOUBLE_EQ(device_score(gpu(100, 120, 10)), 0.8);
}

TEST(Placement, UnknownReadingsCountAsTheMiddleOfTheirRange) {
  WorkerRecord unknown = gpu(-1, -1, -1);
  EXPECT_DOUBLE_EQ(device_score(unknown), 0.4 * 0.5 + 0.3 + 0.2 * 0.5 + 0.1 * 0.5);
  // A worker reading a cool temperature beats one that cannot read it; a hot one loses to it.
  EXPECT_GT(device_score(gpu(50, 20, 9)), device_score(gpu(50, -1, 9)));
  EXPECT_LT(device_score(gpu(50, 80, 9)), device_score(gpu(50, -1, 9)));
}

TEST(Placement, GpuHintsRankEveryGpuAboveEveryCpu) {
  WorkerRecord cpu;
  cpu.slots = 64;
  WorkerRecord crowded = gpu(1, 89, 7, 1);
  EXPECT_GT(placement_rank(Placement::kPreferGpu, crowded), placement_rank(Placement::kPreferGpu, cpu));
  EXPECT_GT(placement_rank(Placement::kPreferGpu, gpu(90, 30, 9)), placement_rank(Placement::kPreferGpu, crowded));
  // Without a GPU hint, only free slots count.
  EXPECT_DOUBLE_EQ(placement_rank(Placement::kAny, crowded), 1.0);
}

TEST(Placement, RegistryPicksTheBestScoredGpu) {
  WorkerRegistry r;
  std::vector<Job*> orphaned;
  WorkerRecord hot = gpu(90, 85, 9);
  hot.id = "hot";
  hot.kernels = {"matmul"};
  WorkerRecord cool = gpu(90, 40, 9);
  cool.id = "cool";
  cool.kernels = {"matmul"};
  r.upsert(std::move(hot), orphaned);
  r.upsert(std::move(cool), orphaned);
  Job job;
  job.kernel = "matmul";
  job.kernels = {"matmul"};
  job.placement = Placement::kPreferGpu;
  EXPECT_EQ(r.select(job)->id, "cool");
}

TEST(Placement, GpuWithOpenCircuitCountsAsCpu) {
  WorkerRegistry r;
  std::vector<Job*> orphaned;
  WorkerRecord broken = gpu(90, 40, 9);
  broken.kernels = {"matmul"};
  broken.metrics.gpu_disabled = true;
  r.upsert(std::move(broken), orphaned);
  EXPECT_FALSE(r.could_run({"matmul"}, Placement::kRequireGpu));
  EXPECT_TRUE(r.could_run({"matmul"}, Placement::kCpuOnly));
}

}  // namespace
}  // namespace bridge::broker
