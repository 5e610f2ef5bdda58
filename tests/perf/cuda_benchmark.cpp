// GPU benchmarks (Google Benchmark), run on a GPU machine by scripts/gpu-verify. Each figure comes
// with its baseline from the same run:
//   vector_add   effective bandwidth (2 reads + 1 write per element) of the kernel, timed with CUDA
//                events by the backend, against cudaMemcpy device-to-device of the same input bytes
//                (1 read + 1 write per byte).
//   matmul       TFLOP/s (2·M·N·K / kernel time) of cuBLAS FP32 sgemm as the backend runs it.
//   small job    one 4 KiB vector_add through the whole fleet (client → broker → GPU worker → client),
//                against the same job's bare upload + kernel + download time on the backend.
// Without a usable GPU every benchmark is reported as skipped, with CUDA's reason.
#include <benchmark/benchmark.h>
#include <cuda_runtime_api.h>

#include <random>

#include "bridge/worker/cpu_backend.hpp"
#include "fleet.hpp"
#include "gpu_test_support.hpp"

namespace bridge::testing {
namespace {

std::shared_ptr<worker::CpuBackend> g_cpu;
std::unique_ptr<worker::Backend> g_gpu;
std::string g_why;

bool have_gpu(benchmark::State& state) {
  if (g_gpu) return true;
  state.SkipWithError(("no usable CUDA device: " + g_why).c_str());
  return false;
}

Tensor filled(Shape shape, float value) {
  Tensor t = Tensor::zeros(DType::kF32, std::move(shape));
  for (float& v : t.mutable_values<float>()) v = value;
  return t;
}

void BM_DeviceCopy(benchmark::State& state) {
  if (!have_gpu(state)) return;
  const std::size_t bytes = static_cast<std::size_t>(state.range(0)) * sizeof(float) * 2;  // vector_add's inputs
  void *src = nullptr, *dst = nullptr;
  cudaMalloc(&src, bytes);
  cudaMalloc(&dst, bytes);
  cudaEvent_t start, stop;
  cudaEventCreate(&start);
  cudaEventCreate(&stop);
  for (auto _ : state) {
    cudaEventRecord(start);
    cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice);
    cudaEventRecord(stop);
    cudaEventSynchronize(stop);
    float ms = 0;
    cudaEventElapsedTime(&ms, start, stop);
    state.SetIterationTime(ms / 1e3);
  }
  state.counters["GB/s"] = benchmark::Counter(2.0 * bytes * state.iterations(), benchmark::Counter::kIsRate,
                                              benchmark::Counter::kIs1000);
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  cudaFree(src);
  cudaFree(dst);
}

void BM_VectorAddKernel(benchmark::State& state) {
  if (!have_gpu(state)) return;
  const std::int64_t n = state.range(0);
  Tensor a = filled({n}, 1.0f), b = filled({n}, 2.0f);
  for (auto _ : state) {
    auto e = run_job(*g_gpu, "vector_add", {a, b});
    if (!e->status.is_ok() || !e->fallback_reason.empty()) {
      state.SkipWithError(("vector_add did not run on the GPU: " + e->status.to_string() + e->fallback_reason).c_str());
      return;
    }
    state.SetIterationTime(static_cast<double>(e->compute_us) / 1e6);
  }
  state.counters["GB/s"] = benchmark::Counter(3.0 * n * sizeof(float) * state.iterations(), benchmark::Counter::kIsRate,
                                              benchmark::Counter::kIs1000);
}

void BM_MatmulKernel(benchmark::State& state) {
  if (!have_gpu(state)) return;
  const std::int64_t n = state.range(0);
  Tensor a = filled({n, n}, 0.5f), b = filled({n, n}, 0.25f);
  for (auto _ : state) {
    auto e = run_job(*g_gpu, "matmul", {a, b});
    if (!e->status.is_ok() || !e->fallback_reason.empty()) {
      state.SkipWithError("matmul did not run on the GPU");
      return;
    }
    state.SetIterationTime(static_cast<double>(e->compute_us) / 1e6);
  }
  state.counters["TFLOP/s"] =
      benchmark::Counter(2.0 * n * n * n * state.iterations() / 1e12, benchmark::Counter::kIsRate);
}

void BM_SmallJobFleetVersusBare(benchmark::State& state) {
  if (!have_gpu(state)) return;
  FleetOptions options;
  options.workers = 1;
  options.slots = 4;
  options.worker_device = "cuda:0";
  Fleet fleet(options);
  Client client(fleet.client_options());
  const std::int64_t n = 1024;  // 4 KiB per tensor
  Tensor a = filled({n}, 1.0f), b = filled({n}, 2.0f);
  JobRequest job{.kernel = "vector_add", .inputs = {a, b}, .placement = Placement::kRequireGpu};
  for (int warm = 0; warm < 20; ++warm) client.run(job);
  double fleet_us = 0, bare_us = 0;
  for (auto _ : state) {
    JobResult r = client.run(job);
    if (!r.ok() || r.device_kind != DeviceKind::kCuda) {
      state.SkipWithError(
          ("fleet job failed or not on a GPU: " + r.status.to_string() + " " + r.fallback_reason).c_str());
      return;
    }
    auto e = run_job(*g_gpu, "vector_add", {a, b});
    const double bare = static_cast<double>(e->transfer_us + e->compute_us);
    fleet_us += static_cast<double>(r.timings.total.count());
    bare_us += bare;
    state.SetIterationTime(static_cast<double>(r.timings.total.count()) / 1e6);
  }
  const double iterations = static_cast<double>(state.iterations());
  state.counters["fleet_us"] = fleet_us / iterations;
  state.counters["bare_us"] = bare_us / iterations;
  state.counters["fleet/bare"] = fleet_us / bare_us;
}

BENCHMARK(BM_DeviceCopy)->Arg(1 << 20)->Arg(1 << 24)->Arg(1 << 26)->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_VectorAddKernel)->Arg(1 << 20)->Arg(1 << 24)->Arg(1 << 26)->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_MatmulKernel)->Arg(1024)->Arg(4096)->Arg(8192)->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_SmallJobFleetVersusBare)->Iterations(2000)->UseManualTime()->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace bridge::testing

int main(int argc, char** argv) {
  using namespace bridge;
  testing::g_cpu = std::make_shared<worker::CpuBackend>(worker::CpuBackend::Options{});
  worker::CudaBackendOptions options;
  options.cpu = testing::g_cpu;
  options.slots = 4;
  testing::g_gpu = worker::load_cuda_backend(testing::cuda_plugin_path(), options, testing::g_why);
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  testing::g_gpu.reset();
  return 0;
}
