// CPU kernels against their baselines, in one run on one machine (Google Benchmark):
//   vector_add (the catalog kernel, in the worker's oneTBB arena) against a STREAM-like triad
//   a = b + s*c on the same threads, both counted as bytes moved per second;
//   matmul (the catalog kernel) against OpenBLAS cblas_sgemm, both in FLOP/s (2*M*N*K);
//   and microbenchmarks of the hot paths of the broker: encoding, verifying and decoding a tiny job,
//   and a scheduler round (enqueue + next) with several tenants.
// Built with -DBRIDGE_BENCHMARKS=ON; scripts/bench runs it and turns the counters into ratios.
#include <benchmark/benchmark.h>
#include <cblas.h>

#include <tbb/global_control.h>
#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>

#include <thread>

#include "bridge/broker/scheduler.hpp"
#include "bridge/core/job_codec.hpp"
#include "bridge/worker/backend.hpp"
#include "bridge/worker/cpu_backend.hpp"
#include "random_tensor.hpp"

namespace {

using namespace bridge;

// The same arena shape as the worker's CpuBackend: every hardware thread.
tbb::task_arena& arena() {
  static const int threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  static tbb::global_control parallelism(tbb::global_control::max_allowed_parallelism,
                                         static_cast<std::size_t>(threads) + 1);
  static tbb::task_arena a(threads);
  return a;
}

void run_kernel(const char* name, std::vector<Tensor> inputs, std::vector<Tensor>& outputs,
                worker::Params params = {}) {
  const worker::KernelSpec* kernel = worker::KernelRegistry::global().find(name);
  worker::KernelArgs args{inputs, &params};
  arena().execute([&] { kernel->run_cpu(args, outputs); });
}

void BM_Triad(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  std::vector<float> a(n), b(n, 1.0f), c(n, 2.0f);
  const float s = 3.0f;
  for (auto _ : state) {
    arena().execute([&] {
      tbb::parallel_for(tbb::blocked_range<std::size_t>(0, n, 16384), [&](const tbb::blocked_range<std::size_t>& r) {
        for (std::size_t i = r.begin(); i < r.end(); ++i) a[i] = b[i] + s * c[i];
      });
    });
    benchmark::DoNotOptimize(a.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * 3 * n * sizeof(float)));
}

void BM_VectorAdd(benchmark::State& state) {
  const auto n = static_cast<std::int64_t>(state.range(0));
  std::vector<Tensor> inputs{testing::random_tensor({n}, 1), testing::random_tensor({n}, 2)};
  std::vector<Tensor> outputs{Tensor::zeros(DType::kF32, {n})};
  for (auto _ : state) {
    run_kernel("vector_add", inputs, outputs);
    benchmark::DoNotOptimize(outputs[0].bytes().data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(
      static_cast<std::int64_t>(state.iterations() * 3 * n * static_cast<std::int64_t>(sizeof(float))));
}

void BM_Matmul(benchmark::State& state) {
  const std::int64_t n = state.range(0);
  std::vector<Tensor> inputs{testing::random_tensor({n, n}, 3), testing::random_tensor({n, n}, 4)};
  std::vector<Tensor> outputs{Tensor::zeros(DType::kF32, {n, n})};
  for (auto _ : state) {
    // The kernel accumulates into a zeroed output (the worker zeroes it); zeroing is part of the job.
    std::memset(outputs[0].mutable_bytes().data(), 0, outputs[0].byte_size());
    run_kernel("matmul", inputs, outputs);
    benchmark::DoNotOptimize(outputs[0].bytes().data());
  }
  state.counters["FLOP/s"] = benchmark::Counter(
      2.0 * static_cast<double>(n * n * n) * static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}

void BM_OpenBlasSgemm(benchmark::State& state) {
  const std::int64_t n = state.range(0);
  const Tensor a = testing::random_tensor({n, n}, 3), b = testing::random_tensor({n, n}, 4);
  std::vector<float> c(static_cast<std::size_t>(n * n));
  const int dim = static_cast<int>(n);
  for (auto _ : state) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, dim, dim, dim, 1.0f, a.values<float>().data(), dim,
                b.values<float>().data(), dim, 0.0f, c.data(), dim);
    benchmark::DoNotOptimize(c.data());
  }
  state.counters["FLOP/s"] = benchmark::Counter(
      2.0 * static_cast<double>(n * n * n) * static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}

// A tiny job through the codec as the client and broker handle it: encode, verify, validate.
void BM_TinyJobCodec(benchmark::State& state) {
  const JobRequest job{.kernel = "passthrough", .inputs = {Tensor::vector<float>({1, 2, 3, 4})}};
  const core::Limits limits;
  std::uint64_t id = 1;
  for (auto _ : state) {
    core::Frames frames = core::encode_request(job, id++, "default", std::chrono::seconds(30));
    const wire::Envelope* envelope = nullptr;
    std::uint64_t bytes = 0;
    if (!core::decode_envelope(frames[0], limits, envelope).is_ok() ||
        !core::validate_request(*envelope->body_as_JobRequest(), std::span(frames).subspan(1), limits, bytes).is_ok())
      state.SkipWithError("codec refused a valid job");
    benchmark::DoNotOptimize(bytes);
  }
  state.SetItemsProcessed(state.iterations());
}

// One job in and out of the scheduler with 8 backlogged tenants (weighted fair queuing).
void BM_SchedulerRound(benchmark::State& state) {
  broker::Scheduler scheduler;
  std::uint64_t key = 1;
  auto job = [&](int tenant) {
    auto j = std::make_unique<broker::Job>();
    j->key = key++;
    j->tenant = "t" + std::to_string(tenant);
    j->kernel = "passthrough";
    j->kernels = {"passthrough"};
    j->received = broker::Clock::now();
    j->deadline = j->received + std::chrono::hours(1);
    return j;
  };
  for (int t = 0; t < 8; ++t)
    for (int i = 0; i < 64; ++i) scheduler.enqueue(job(t));
  const auto any = [](const broker::Job&) { return true; };
  int t = 0;
  for (auto _ : state) {
    auto next = scheduler.next(any);
    benchmark::DoNotOptimize(next.get());
    scheduler.enqueue(job(t++ % 8));
  }
  state.SetItemsProcessed(state.iterations());
}

}  // namespace

// Says which OpenBLAS ran (kernel for this CPU, threads), so that the baseline is known.
const bool kOpenBlasContext = [] {
  benchmark::AddCustomContext("openblas", std::string(openblas_get_config()) + ", core " + openblas_get_corename() +
                                              ", " + std::to_string(openblas_get_num_threads()) + " threads");
  return true;
}();

BENCHMARK(BM_Triad)->Arg(1 << 24)->UseRealTime();
BENCHMARK(BM_VectorAdd)->Arg(1 << 24)->UseRealTime();
BENCHMARK(BM_Matmul)->Arg(256)->Arg(512)->Arg(1024)->UseRealTime();
BENCHMARK(BM_OpenBlasSgemm)->Arg(256)->Arg(512)->Arg(1024)->UseRealTime();
BENCHMARK(BM_TinyJobCodec);
BENCHMARK(BM_SchedulerRound);
BENCHMARK_MAIN();
