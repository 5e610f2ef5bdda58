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

// A bytes-bound kernel on 64 MiB inputs, its output reused across iterations (the kernel alone),
// counted in bytes moved: what it reads and writes once each, per element of its first input.
void bytes_bound_kernel(benchmark::State& state, const char* name, std::vector<Tensor> inputs, Shape out_shape,
                        double bytes_per_element, worker::Params params = {}) {
  const std::int64_t n = inputs[0].element_count();
  std::vector<Tensor> outputs{Tensor::zeros(DType::kF32, std::move(out_shape))};
  for (auto _ : state) {
    run_kernel(name, inputs, outputs, params);
    benchmark::DoNotOptimize(outputs[0].bytes().data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(static_cast<double>(state.iterations() * n) * bytes_per_element));
}

void BM_VectorAdd(benchmark::State& state) {
  const auto n = static_cast<std::int64_t>(state.range(0));
  bytes_bound_kernel(state, "vector_add", {testing::random_tensor({n}, 1), testing::random_tensor({n}, 2)}, {n}, 12);
}

void BM_Saxpy(benchmark::State& state) {
  const auto n = static_cast<std::int64_t>(state.range(0));
  bytes_bound_kernel(state, "saxpy", {testing::random_tensor({n}, 1), testing::random_tensor({n}, 2)}, {n}, 12,
                     {{"alpha", 3.0}});
}

void BM_ReduceSum(benchmark::State& state) {
  const auto n = static_cast<std::int64_t>(state.range(0));
  bytes_bound_kernel(state, "reduce_sum", {testing::random_tensor({n}, 1)}, {}, 4);
}

void BM_Softmax(benchmark::State& state) {  // rows of 1024
  const auto n = static_cast<std::int64_t>(state.range(0));
  bytes_bound_kernel(state, "softmax", {testing::random_tensor({n / 1024, 1024}, 1)}, {n / 1024, 1024}, 8);
}

// The params form (x alone, one scale and shift for all): a 1-D x is one long row of channels.
void BM_NormalizeParams(benchmark::State& state) {
  const auto n = static_cast<std::int64_t>(state.range(0));
  bytes_bound_kernel(state, "normalize", {testing::random_tensor({n}, 1)}, {n}, 8, {{"scale", 2.0}, {"shift", 1.0}});
}
void BM_Normalize(benchmark::State& state) {  // an RGB image: 3 channels, scale and shift per channel
  const auto n = static_cast<std::int64_t>(state.range(0)) / 3 * 3;
  bytes_bound_kernel(state, "normalize",
                     {testing::random_tensor({n / 3, 3}, 1), Tensor::vector<float>({0.5f, 2.0f, 4.0f}),
                      Tensor::vector<float>({-1.0f, 0.0f, 1.0f})},
                     {n / 3, 3}, 8);
}

// vector_add as a job runs it: its output allocated for each run, (0) fresh and zeroed, as before
// kernels could say they write every element and before the output pool; (1) fresh, not zeroed;
// (2) as the worker's CPU backend allocates it now (from its pool, not zeroed).
void BM_VectorAddJob(benchmark::State& state) {
  static worker::CpuBackend backend(worker::CpuBackend::Options{.threads = 1});
  const auto n = static_cast<std::int64_t>(state.range(0));
  const worker::OutputSpec spec{.name = "c", .dtype = DType::kF32, .shape = {n}, .zero_fill = false};
  auto allocate = [&] {
    switch (state.range(1)) {
      case 0: return Tensor::zeros(DType::kF32, {n});
      case 1: return Tensor::uninitialized(DType::kF32, {n});
      default: return backend.allocate_output(spec);
    }
  };
  std::vector<Tensor> inputs{testing::random_tensor({n}, 1), testing::random_tensor({n}, 2)};
  for (auto _ : state) {
    std::vector<Tensor> outputs{allocate()};
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

// One job in and out of the scheduler with 8 backlogged tenants (weighted fair queuing). The scheduler
// holds jobs by reference (the broker's JobTable owns them): each job taken goes back in with a new key.
void BM_SchedulerRound(benchmark::State& state) {
  broker::Scheduler scheduler;
  std::vector<std::unique_ptr<broker::Job>> jobs;
  std::uint64_t key = 1;
  for (int t = 0; t < 8; ++t)
    for (int i = 0; i < 64; ++i) {
      auto& j = *jobs.emplace_back(std::make_unique<broker::Job>());
      j.key = key++;
      j.tenant = "t" + std::to_string(t);
      j.kernel = "passthrough";
      j.kernels = {"passthrough"};
      j.received = broker::Clock::now();
      j.deadline = j.received + std::chrono::hours(1);
      scheduler.enqueue(j);
    }
  const auto any = [](const broker::Job&) { return true; };
  for (auto _ : state) {
    broker::Job* next = scheduler.next(any);
    benchmark::DoNotOptimize(next);
    next->key = key++;
    scheduler.enqueue(*next);
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
BENCHMARK(BM_Saxpy)->Arg(1 << 24)->UseRealTime();
BENCHMARK(BM_ReduceSum)->Arg(1 << 24)->UseRealTime();
BENCHMARK(BM_Softmax)->Arg(1 << 24)->UseRealTime();
BENCHMARK(BM_Normalize)->Arg(1 << 24)->UseRealTime();
BENCHMARK(BM_NormalizeParams)->Arg(1 << 24)->UseRealTime();
BENCHMARK(BM_VectorAddJob)->Args({1 << 24, 0})->Args({1 << 24, 1})->Args({1 << 24, 2})->UseRealTime();
BENCHMARK(BM_Matmul)->Arg(256)->Arg(512)->Arg(1024)->UseRealTime();
BENCHMARK(BM_OpenBlasSgemm)->Arg(256)->Arg(512)->Arg(1024)->UseRealTime();
BENCHMARK(BM_TinyJobCodec);
BENCHMARK(BM_SchedulerRound);
BENCHMARK_MAIN();
