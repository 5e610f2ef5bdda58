// The CUDA backend on a real GPU: every kernel against the CPU backend, fallback, pools, device facts.
// Label `gpu`; each test skips, saying why, when no usable CUDA device is present.
#include <gtest/gtest.h>

#include "random_tensor.hpp"

#include <cmath>
#include <random>

#include "bridge/worker/cpu_backend.hpp"
#include "gpu_test_support.hpp"

namespace bridge::testing {
namespace {

class CudaBackend : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    cpu_ = std::make_shared<worker::CpuBackend>(worker::CpuBackend::Options{2});
    gpu_ = make({});
  }
  static void TearDownTestSuite() {
    gpu_.reset();
    cpu_.reset();
  }
  static std::unique_ptr<worker::Backend> make(worker::CudaBackendOptions options) {
    options.cpu = cpu_;
    return worker::load_cuda_backend(cuda_plugin_path(), options, why_);
  }
  void SetUp() override {
    if (!gpu_) GTEST_SKIP() << "no usable CUDA device: " << why_;
  }

  // Runs a kernel on the GPU and on the CPU; expects the GPU to have run it, and returns both.
  std::pair<std::unique_ptr<worker::Execution>, std::unique_ptr<worker::Execution>> both(
      const std::string& kernel, std::vector<Tensor> inputs, worker::Params params = {}) {
    auto on_gpu = run_job(*gpu_, kernel, inputs, params);
    auto on_cpu = run_job(*cpu_, kernel, inputs, params);
    EXPECT_TRUE(on_gpu->status.is_ok()) << on_gpu->status.to_string();
    EXPECT_TRUE(on_cpu->status.is_ok()) << on_cpu->status.to_string();
    EXPECT_EQ(on_gpu->ran_on->kind, DeviceKind::kCuda) << kernel << " fell back: " << on_gpu->fallback_reason;
    EXPECT_TRUE(on_gpu->fallback_reason.empty()) << on_gpu->fallback_reason;
    return {std::move(on_gpu), std::move(on_cpu)};
  }

  static void expect_close(const Tensor& gpu, const Tensor& cpu, double rel, double abs) {
    ASSERT_EQ(gpu.shape(), cpu.shape());
    const auto g = gpu.values<float>(), c = cpu.values<float>();
    for (std::size_t i = 0; i < c.size(); ++i)
      ASSERT_NEAR(g[i], c[i], abs + rel * std::fabs(c[i])) << "element " << i;
  }

  static inline std::shared_ptr<worker::CpuBackend> cpu_;
  static inline std::unique_ptr<worker::Backend> gpu_;
  static inline std::string why_;
};

TEST_F(CudaBackend, ReportsTheRealDevice) {
  const DeviceInfo& d = gpu_->device();
  EXPECT_EQ(d.kind, DeviceKind::kCuda);
  EXPECT_FALSE(d.name.empty());
  EXPECT_GT(d.total_memory_bytes, 0u);
  EXPECT_GE(d.compute_capability_major, 7);
  EXPECT_GT(d.multiprocessors, 0);
  const DeviceMetrics m = gpu_->metrics();
  EXPECT_GT(m.free_memory_bytes, 0);
  EXPECT_FALSE(m.gpu_disabled);
  std::cout << "device: " << d.name << ", cc " << d.compute_capability_major << "." << d.compute_capability_minor
            << ", " << d.multiprocessors << " SMs, temperature " << m.temperature_c << " C, power " << m.power_watts
            << " W\n";
}

// Tolerances: element-wise ops are one rounding each (FMA may save one); sums and dot products are
// reordered between CUB/cuBLAS and the CPU, so they are compared against the magnitude involved.
TEST_F(CudaBackend, ElementwiseKernelsMatchTheCpu) {
  for (std::int64_t n : {1, 7, 1000, 1 << 20, (1 << 20) + 3}) {
    Tensor a = random_tensor({n}, 1), b = random_tensor({n}, 2);
    auto [g1, c1] = both("vector_add", {a, b});
    expect_close(g1->outputs[0], c1->outputs[0], 0, 0);
    auto [g2, c2] = both("saxpy", {a, b}, {{"alpha", 1.5}});
    expect_close(g2->outputs[0], c2->outputs[0], 1e-6, 1e-7);
    auto [g3, c3] = both("passthrough", {a});
    expect_close(g3->outputs[0], c3->outputs[0], 0, 0);
  }
}

TEST_F(CudaBackend, ReduceSumMatchesTheCpu) {
  for (std::int64_t n : {0, 1, 1000, 1 << 22}) {
    Tensor x = random_tensor({n}, 3);
    auto [g, c] = both("reduce_sum", {x});
    double magnitude = 0;
    for (float v : x.values<float>()) magnitude += std::fabs(v);
    // CUB sums in float along a tree: the error bound is about log2(n)·ε·Σ|x|.
    EXPECT_NEAR(g->outputs[0].values<float>()[0], c->outputs[0].values<float>()[0], 1e-5 * magnitude + 1e-6) << n;
  }
}

TEST_F(CudaBackend, MatmulMatchesTheCpu) {
  for (auto [m, k, n] : std::vector<std::array<std::int64_t, 3>>{
           {1, 1, 1}, {2, 3, 4}, {64, 64, 64}, {129, 257, 65}, {512, 512, 512}, {4, 0, 3}}) {
    auto [g, c] = both("matmul", {random_tensor({m, k}, 4), random_tensor({k, n}, 5)});
    expect_close(g->outputs[0], c->outputs[0], 0, 1e-5 * static_cast<double>(k + 1));
  }
}

TEST_F(CudaBackend, SoftmaxMatchesTheCpu) {
  for (auto [rows, cols] :
       std::vector<std::pair<std::int64_t, std::int64_t>>{{1, 1}, {3, 1000}, {1000, 3}, {64, 4097}}) {
    Tensor x = random_tensor({rows, cols}, 6);
    for (float& v : x.mutable_values<float>()) v *= 40.0f;
    auto [g, c] = both("softmax", {x});
    expect_close(g->outputs[0], c->outputs[0], 1e-5, 1e-7);
  }
}

TEST_F(CudaBackend, ImageKernelsMatchTheCpu) {
  for (Shape shape : std::vector<Shape>{{1, 1}, {17, 31}, {64, 48, 3}, {480, 640, 3}}) {
    Tensor image = random_tensor(shape, 11);
    for (auto [h, w] : std::vector<std::pair<double, double>>{{1, 1}, {5, 9}, {128, 96}, {240, 320}}) {
      auto [g, c] = both("resize", {image}, {{"height", h}, {"width", w}});
      expect_close(g->outputs[0], c->outputs[0], 1e-6, 1e-6);
    }
    for (double sigma : {0.5, 1.5, 4.0}) {
      auto [g, c] = both("blur", {image}, {{"sigma", sigma}});
      expect_close(g->outputs[0], c->outputs[0], 1e-5, 1e-6);
    }
    auto [g1, c1] = both("normalize", {image}, {{"scale", 2.5}, {"shift", -0.25}});
    expect_close(g1->outputs[0], c1->outputs[0], 1e-6, 1e-7);
    const std::int64_t channels = shape.back();
    if (shape.size() == 3) {
      auto [g2, c2] = both("normalize", {image, random_tensor({channels}, 12), random_tensor({channels}, 13)});
      expect_close(g2->outputs[0], c2->outputs[0], 1e-6, 1e-7);
    }
  }
}

TEST_F(CudaBackend, APipelineRunsWhollyOnTheGpuAndMatchesTheCpu) {
  auto pipeline = [](Tensor image) {
    auto e = std::make_unique<worker::Execution>();
    const auto& registry = worker::KernelRegistry::global();
    e->kernel = registry.find("resize");
    e->params = {{"height", 120}, {"width", 160}};
    e->inputs = {std::move(image)};
    e->then.push_back({registry.find("blur"), {{"sigma", 2}}, {}});
    e->then.push_back({registry.find("normalize"), {{"scale", 4}, {"shift", -2}}, {}});
    return e;
  };
  const Tensor image = random_tensor({480, 640, 3}, 14);
  auto g = run_execution(*gpu_, pipeline(image));
  auto c = run_execution(*cpu_, pipeline(image));
  ASSERT_TRUE(g->status.is_ok() && c->status.is_ok()) << g->status.to_string();
  EXPECT_EQ(g->ran_on->kind, DeviceKind::kCuda) << g->fallback_reason;
  ASSERT_EQ(g->step_compute_us.size(), 3u);
  expect_close(g->result()[0], c->result()[0], 1e-5, 1e-5);
  std::cout << "pipeline resize+blur+normalize on the GPU: stages";
  for (auto us : g->step_compute_us) std::cout << " " << us << " us";
  std::cout << ", transfer " << g->transfer_us << " us\n";
}

TEST_F(CudaBackend, AnActorsResidentTensorIsUploadedOnceAndReused) {
  worker::CudaBackendOptions options;
  auto fresh = make(options);
  ASSERT_NE(fresh, nullptr) << why_;
  const Tensor weights = random_tensor({256, 256}, 15);
  auto copy = std::make_shared<worker::DeviceCopy>();
  const void* first_buffer = nullptr;
  for (int call = 0; call < 3; ++call) {
    auto e = std::make_unique<worker::Execution>();
    e->kernel = worker::KernelRegistry::global().find("matmul");
    const Tensor x = random_tensor({8, 256}, 16 + call);
    e->inputs = {x, weights};
    e->resident_copies = {nullptr, copy};
    auto g = run_execution(*fresh, std::move(e));
    ASSERT_TRUE(g->status.is_ok()) << g->status.to_string();
    EXPECT_EQ(g->ran_on->kind, DeviceKind::kCuda) << g->fallback_reason;
    auto c = run_job(*cpu_, "matmul", {x, weights});
    expect_close(g->outputs[0], c->outputs[0], 0, 1e-5 * 257);
    ASSERT_TRUE(copy->buffer);
    if (call == 0) first_buffer = copy->buffer.get();
    EXPECT_EQ(copy->buffer.get(), first_buffer) << "the resident tensor was uploaded again";
  }
  EXPECT_EQ(fresh->metrics().pool_bytes_in_use, static_cast<std::int64_t>(weights.byte_size()))
      << "only the resident copy stays in use between jobs";
  copy.reset();  // the actor dropped it
  EXPECT_EQ(fresh->metrics().pool_bytes_in_use, 0);
}

TEST_F(CudaBackend, KernelWithoutAGpuImplementationRunsOnTheCpuAndSaysWhy) {
  auto e = run_job(*gpu_, "sleep", {}, {{"ms", 1}});
  ASSERT_TRUE(e->status.is_ok()) << e->status.to_string();
  EXPECT_EQ(e->ran_on->kind, DeviceKind::kCpu);
  EXPECT_NE(e->fallback_reason.find("no GPU implementation"), std::string::npos) << e->fallback_reason;
}

TEST_F(CudaBackend, OutOfDeviceMemoryFallsBackToTheCpuWithTheRightAnswer) {
  worker::CudaBackendOptions tiny;
  tiny.device_pool_bytes = 4096;
  auto small = make(tiny);
  ASSERT_NE(small, nullptr) << why_;
  Tensor a = random_tensor({1 << 20}, 7), b = random_tensor({1 << 20}, 8);
  auto e = run_job(*small, "vector_add", {a, b});
  ASSERT_TRUE(e->status.is_ok()) << e->status.to_string();
  EXPECT_EQ(e->ran_on->kind, DeviceKind::kCpu);
  EXPECT_NE(e->fallback_reason.find("out of memory"), std::string::npos) << e->fallback_reason;
  EXPECT_EQ(e->outputs[0].values<float>()[12345], a.values<float>()[12345] + b.values<float>()[12345]);
}

TEST_F(CudaBackend, PoolReusesMemoryAndReportsIt) {
  worker::CudaBackendOptions options;
  auto fresh = make(options);
  ASSERT_NE(fresh, nullptr) << why_;
  Tensor a = random_tensor({4096}, 9);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(run_job(*fresh, "vector_add", {a, a})->status.is_ok());
  const DeviceMetrics m = fresh->metrics();
  EXPECT_EQ(m.pool_misses, 3u);  // two inputs and one output, the first time only
  EXPECT_EQ(m.pool_hits, 6u);
  EXPECT_EQ(m.pool_bytes_in_use, 0);
  EXPECT_GT(m.pool_bytes_cached, 0);
}

TEST_F(CudaBackend, ConcurrentJobsOnAllSlotsAreEachCorrect) {
  std::vector<std::future<std::unique_ptr<worker::Execution>>> futures;
  std::vector<Tensor> inputs;
  for (int i = 0; i < 32; ++i) {
    inputs.push_back(random_tensor({100000}, 100 + i));
    futures.push_back(std::async(std::launch::async, [&, i] {
      return run_job(*gpu_, "saxpy", {inputs[i], inputs[i]}, {{"alpha", 2}});
    }));
  }
  for (int i = 0; i < 32; ++i) {
    auto e = futures[i].get();
    ASSERT_TRUE(e->status.is_ok());
    EXPECT_FLOAT_EQ(e->outputs[0].values<float>()[99], 3 * inputs[i].values<float>()[99]);
  }
}

}  // namespace
}  // namespace bridge::testing
