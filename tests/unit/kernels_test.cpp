// Every catalog kernel against a plain reference implementation, on random data and edge sizes,
// and every kernel's argument checks.
#include <gtest/gtest.h>

#include "random_tensor.hpp"

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <random>

#include <tbb/task_arena.h>

#include "bridge/worker/backend.hpp"
#include "bridge/worker/cpu_backend.hpp"

namespace bridge::worker {
namespace {

// Sizes that catch off-by-one and tail-loop bugs: empty, one, primes around vector widths and the
// TBB grain (16384), and a large one.
const std::vector<std::int64_t> kSizes = {0, 1, 2, 7, 31, 257, 16383, 16384, 16411, 1 << 20};

using bridge::testing::random_tensor;

// Plans and runs a kernel on the CPU as the worker does; returns the status (plan or run).
Status run(const std::string& name, std::vector<Tensor> inputs, Params params, std::vector<Tensor>& outputs) {
  const KernelSpec* kernel = KernelRegistry::global().find(name);
  if (kernel == nullptr) return {StatusCode::kUnknownKernel, name};
  Execution e;
  e.kernel = kernel;
  e.inputs = std::move(inputs);
  e.params = std::move(params);
  std::vector<OutputSpec> specs;
  BRIDGE_RETURN_IF_ERROR(kernel->plan(KernelArgs{e.inputs, &e.params}, specs));
  for (auto& s : specs) {
    // A kernel that says it writes every element gets storage full of garbage (all bits set: NaN
    // for floats), as a reused buffer would be: an element it missed shows in the comparison.
    e.outputs.push_back(Tensor::zeros(s.dtype, s.shape, s.name));
    if (kernel->writes_every_output)
      std::memset(e.outputs.back().mutable_bytes().data(), 0xff, e.outputs.back().byte_size());
  }
  tbb::task_arena arena(2);
  arena.execute([&] { run_on_cpu(e); });
  outputs = std::move(e.outputs);
  return e.status;
}

void expect_near_all(std::span<const float> got, const std::vector<double>& want, double rel, double abs) {
  ASSERT_EQ(got.size(), want.size());
  for (std::size_t i = 0; i < want.size(); ++i)
    ASSERT_NEAR(got[i], want[i], abs + rel * std::fabs(want[i])) << "at " << i;
}

TEST(Kernels, CatalogHasEveryDocumentedKernel) {
  auto names = KernelRegistry::global().names();
  EXPECT_EQ(names, (std::vector<std::string>{"blur", "matmul", "normalize", "passthrough", "reduce_sum", "resize",
                                             "saxpy", "sleep", "softmax", "vector_add"}));
}

TEST(Kernels, VectorAddMatchesReference) {
  for (auto n : kSizes) {
    Tensor a = random_tensor({n}, 1), b = random_tensor({n}, 2);
    std::vector<Tensor> out;
    ASSERT_TRUE(run("vector_add", {a, b}, {}, out).is_ok());
    std::vector<double> want(static_cast<std::size_t>(n));
    for (std::size_t i = 0; i < want.size(); ++i) want[i] = a.values<float>()[i] + b.values<float>()[i];
    expect_near_all(out[0].values<float>(), want, 0, 0);  // one float add: exact
    EXPECT_EQ(out[0].shape(), a.shape());
  }
}

TEST(Kernels, SaxpyMatchesReference) {
  for (auto n : kSizes) {
    Tensor x = random_tensor({n}, 3), y = random_tensor({n}, 4);
    std::vector<Tensor> out;
    ASSERT_TRUE(run("saxpy", {x, y}, {{"alpha", -1.75}}, out).is_ok());
    std::vector<double> want(static_cast<std::size_t>(n));
    for (std::size_t i = 0; i < want.size(); ++i) want[i] = -1.75f * x.values<float>()[i] + y.values<float>()[i];
    expect_near_all(out[0].values<float>(), want, 1e-6, 1e-7);  // FMA contraction may round once less
  }
}

TEST(Kernels, ReduceSumMatchesDoubleReference) {
  for (auto n : kSizes) {
    Tensor x = random_tensor({n}, 5);
    std::vector<Tensor> out;
    ASSERT_TRUE(run("reduce_sum", {x}, {}, out).is_ok());
    double want = 0;
    for (float v : x.values<float>()) want += v;
    EXPECT_TRUE(out[0].shape().empty());
    EXPECT_NEAR(out[0].values<float>()[0], want, 1e-6 * std::max(1.0, std::fabs(want))) << "n=" << n;
  }
}

// Runs `check` once for each of the kernels' hand-written paths that this machine can run
// (BRIDGE_CPU_ISA caps the choice; the widest first), and leaves the variable unset.
template <class Check>
void for_each_cpu_isa(Check check) {
  for (const char* isa : {"", "avx2", "baseline"}) {
    ::setenv("BRIDGE_CPU_ISA", isa, 1);
    SCOPED_TRACE(std::string("BRIDGE_CPU_ISA=") + isa);
    check();
  }
  ::unsetenv("BRIDGE_CPU_ISA");
}

TEST(Kernels, MatmulMatchesReference) {
  const std::vector<std::array<std::int64_t, 3>> shapes = {{0, 3, 4},  {3, 0, 4},     {1, 1, 1},    {2, 3, 4},
                                                           {7, 13, 5}, {33, 257, 31}, {64, 64, 64}, {300, 129, 517}};
  for_each_cpu_isa([&] {
    for (auto [m, k, n] : shapes) {
      Tensor a = random_tensor({m, k}, 6), b = random_tensor({k, n}, 7);
      std::vector<Tensor> out;
      ASSERT_TRUE(run("matmul", {a, b}, {}, out).is_ok());
      ASSERT_EQ(out[0].shape(), (Shape{m, n}));
      std::vector<double> want(static_cast<std::size_t>(m * n));
      for (std::int64_t i = 0; i < m; ++i)
        for (std::int64_t j = 0; j < n; ++j) {
          double sum = 0;
          for (std::int64_t p = 0; p < k; ++p)
            sum += double(a.values<float>()[i * k + p]) * b.values<float>()[p * n + j];
          want[static_cast<std::size_t>(i * n + j)] = sum;
        }
      // Float accumulation over k terms of magnitude <= 1: error bound ~ k * eps.
      expect_near_all(out[0].values<float>(), want, 0, 1e-6 * static_cast<double>(k + 1) * 4);
    }
  });
}

TEST(Kernels, SoftmaxMatchesReferenceAndIsStableForLargeInputs) {
  for_each_cpu_isa([] {
    // Rows shorter than, equal to and longer than one vector and one summing block, with tails.
    for (auto [rows, cols] : std::vector<std::pair<std::int64_t, std::int64_t>>{
             {1, 1}, {3, 7}, {2, 16}, {17, 1000}, {2, 1024}, {3, 2500}, {1000, 17}, {4, 0}}) {
      Tensor x = random_tensor({rows, cols}, 8);
      for (float& v : x.mutable_values<float>()) v *= 50.0f;  // exp(50) overflows nothing only if shifted
      std::vector<Tensor> out;
      ASSERT_TRUE(run("softmax", {x}, {}, out).is_ok());
      std::vector<double> want(static_cast<std::size_t>(rows * cols));
      for (std::int64_t r = 0; r < rows; ++r) {
        double max = -INFINITY, sum = 0;
        for (std::int64_t c = 0; c < cols; ++c) max = std::max<double>(max, x.values<float>()[r * cols + c]);
        for (std::int64_t c = 0; c < cols; ++c) sum += std::exp(x.values<float>()[r * cols + c] - max);
        for (std::int64_t c = 0; c < cols; ++c)
          want[static_cast<std::size_t>(r * cols + c)] = std::exp(x.values<float>()[r * cols + c] - max) / sum;
      }
      expect_near_all(out[0].values<float>(), want, 1e-5, 1e-7);
    }
  });
}

// -inf is how attention masks an entry out: it gets exactly 0 and the rest share 1. A NaN or +inf
// has no meaningful softmax: its row is NaN, as a reference computed in double gives.
TEST(Kernels, SoftmaxMasksMinusInfinityAndPassesNaNOn) {
  constexpr float kInf = std::numeric_limits<float>::infinity();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for_each_cpu_isa([&] {
    std::vector<float> values(4 * 20, 0.0f);
    for (int c = 0; c < 20; ++c) values[static_cast<std::size_t>(c)] = c % 3 == 0 ? -kInf : 1.0f;  // 7 masked
    values[20 + 5] = nan;
    values[40 + 19] = kInf;
    for (int c = 0; c < 20; ++c) values[static_cast<std::size_t>(60 + c)] = -kInf;
    Tensor x = Tensor::from<float>(values, {4, 20});
    std::vector<Tensor> out;
    ASSERT_TRUE(run("softmax", {x}, {}, out).is_ok());
    const auto y = out[0].values<float>();
    for (std::size_t c = 0; c < 20; ++c) {
      if (c % 3 == 0)
        EXPECT_EQ(y[c], 0.0f) << "column " << c;
      else
        EXPECT_NEAR(y[c], 1.0 / 13, 1e-7) << "column " << c;
      EXPECT_TRUE(std::isnan(y[20 + c])) << "the row with a NaN, column " << c;
      EXPECT_TRUE(std::isnan(y[40 + c])) << "the row with +inf, column " << c;
      EXPECT_TRUE(std::isnan(y[60 + c])) << "the row all -inf, column " << c;
    }
  });
}

// Bilinear sample at output pixel (y, x) with the half-pixel convention, in double, as the reference.
double reference_resize(const Tensor& img, std::int64_t out_h, std::int64_t out_w, std::int64_t y, std::int64_t x,
                        std::int64_t k) {
  const std::int64_t h = img.shape()[0], w = img.shape()[1], c = img.shape().size() == 3 ? img.shape()[2] : 1;
  auto source = [](std::int64_t i, std::int64_t in, std::int64_t out) {
    return std::clamp((i + 0.5) * static_cast<double>(in) / static_cast<double>(out) - 0.5, 0.0,
                      static_cast<double>(in - 1));
  };
  const double sy = source(y, h, out_h), sx = source(x, w, out_w);
  const auto y0 = static_cast<std::int64_t>(std::floor(sy)), x0 = static_cast<std::int64_t>(std::floor(sx));
  const std::int64_t y1 = std::min(y0 + 1, h - 1), x1 = std::min(x0 + 1, w - 1);
  const double fy = sy - static_cast<double>(y0), fx = sx - static_cast<double>(x0);
  auto at = [&](std::int64_t yy, std::int64_t xx) {
    return static_cast<double>(img.values<float>()[static_cast<std::size_t>((yy * w + xx) * c + k)]);
  };
  return (1 - fy) * ((1 - fx) * at(y0, x0) + fx * at(y0, x1)) + fy * ((1 - fx) * at(y1, x0) + fx * at(y1, x1));
}

TEST(Kernels, ResizeMatchesBilinearReference) {
  for (auto [h, w, c, oh, ow] : std::vector<std::array<std::int64_t, 5>>{
           {5, 7, 3, 11, 13}, {16, 16, 1, 4, 4}, {9, 9, 2, 9, 9}, {1, 1, 1, 3, 2}, {6, 4, 3, 5, 9}}) {
    Tensor img = random_tensor(c == 1 ? Shape{h, w} : Shape{h, w, c}, 11);
    std::vector<Tensor> out;
    ASSERT_TRUE(run("resize", {img}, {{"height", double(oh)}, {"width", double(ow)}}, out).is_ok());
    ASSERT_EQ(out[0].shape()[0], oh);
    ASSERT_EQ(out[0].shape()[1], ow);
    std::vector<double> want;
    for (std::int64_t y = 0; y < oh; ++y)
      for (std::int64_t x = 0; x < ow; ++x)
        for (std::int64_t k = 0; k < c; ++k) want.push_back(reference_resize(img, oh, ow, y, x, k));
    expect_near_all(out[0].values<float>(), want, 1e-5, 1e-6);
    if (oh == h && ow == w) {  // same size: the image itself
      for (std::size_t i = 0; i < want.size(); ++i) ASSERT_EQ(out[0].values<float>()[i], img.values<float>()[i]);
    }
  }
}

TEST(Kernels, BlurMatchesDirectGaussianConvolution) {
  const std::int64_t h = 13, w = 17, c = 2;
  const double sigma = 1.5;
  Tensor img = random_tensor({h, w, c}, 12);
  std::vector<Tensor> out;
  ASSERT_TRUE(run("blur", {img}, {{"sigma", sigma}}, out).is_ok());
  const auto radius = static_cast<std::int64_t>(std::ceil(3 * sigma));
  double norm = 0;
  for (std::int64_t t = -radius; t <= radius; ++t) norm += std::exp(-0.5 * t * t / (sigma * sigma));
  auto weight = [&](std::int64_t t) { return std::exp(-0.5 * t * t / (sigma * sigma)) / norm; };
  std::vector<double> want;
  for (std::int64_t y = 0; y < h; ++y)
    for (std::int64_t x = 0; x < w; ++x)
      for (std::int64_t k = 0; k < c; ++k) {
        double acc = 0;
        for (std::int64_t dy = -radius; dy <= radius; ++dy)
          for (std::int64_t dx = -radius; dx <= radius; ++dx) {
            const std::int64_t yy = std::clamp(y + dy, std::int64_t{0}, h - 1),
                               xx = std::clamp(x + dx, std::int64_t{0}, w - 1);
            acc += weight(dy) * weight(dx) * img.values<float>()[static_cast<std::size_t>((yy * w + xx) * c + k)];
          }
        want.push_back(acc);
      }
  expect_near_all(out[0].values<float>(), want, 1e-5, 1e-6);
  // A constant image stays constant: the kernel is normalised.
  Tensor flat = Tensor::zeros(DType::kF32, {8, 8});
  for (float& v : flat.mutable_values<float>()) v = 0.25f;
  ASSERT_TRUE(run("blur", {flat}, {{"sigma", 3}}, out).is_ok());
  for (float v : out[0].values<float>()) ASSERT_NEAR(v, 0.25f, 1e-6);
}

TEST(Kernels, NormalizeAppliesScaleAndShiftPerChannel) {
  Tensor img = random_tensor({4, 5, 3}, 13);
  Tensor scale = Tensor::vector<float>({2, -1, 0.5f}), shift = Tensor::vector<float>({1, 0, -3});
  std::vector<Tensor> out;
  ASSERT_TRUE(run("normalize", {img, scale, shift}, {}, out).is_ok());
  for (std::size_t i = 0; i < img.values<float>().size(); ++i) {
    const std::size_t k = i % 3;
    ASSERT_EQ(out[0].values<float>()[i], img.values<float>()[i] * scale.values<float>()[k] + shift.values<float>()[k]);
  }
}

// normalize of a random image of `pixels` x `c`, each value against the arithmetic.
void expect_normalized_per_channel(std::int64_t pixels, std::int64_t c, std::uint32_t seed) {
  Tensor img = random_tensor({pixels, c}, seed);
  Tensor scale = random_tensor({c}, seed + 1), shift = random_tensor({c}, seed + 2);
  std::vector<Tensor> out;
  ASSERT_TRUE(run("normalize", {img, scale, shift}, {}, out).is_ok()) << c;
  const auto x = img.values<float>(), y = out[0].values<float>();
  for (std::size_t i = 0; i < x.size(); ++i) {
    const auto k = i % static_cast<std::size_t>(c);
    ASSERT_NEAR(y[i], x[i] * scale.values<float>()[k] + shift.values<float>()[k], 4e-7) << "c=" << c << " i=" << i;
  }
}

// Channel counts that make the kernel repeat scale and shift to whole cache lines in different
// ways, over images of several such periods and a partial one.
TEST(Kernels, NormalizeIsRightForAnyChannelCountOverManyPeriods) {
  for (std::int64_t c : {1, 2, 3, 7, 16, 17, 1023, 1500}) expect_normalized_per_channel(40000 / c + 3, c, 15);
  // Fewer pixels than a full period: the period is cut to the image.
  for (std::int64_t pixels : {1, 2, 5}) expect_normalized_per_channel(pixels, 1023, 16);
  expect_normalized_per_channel(7, 3, 17);
}

// Over 8 MiB the output is written with streaming stores, one loop per instruction set: each is
// checked against the arithmetic, with channel counts whose periods start on and off a vector's
// alignment, and the params form too.
TEST(Kernels, NormalizeOfALargeTensorIsRightOnEveryInstructionSet) {
  constexpr std::int64_t kValues = (std::int64_t{8} << 20) / 4 + 1000;  // just over the streaming bound
  for_each_cpu_isa([&] {
    for (std::int64_t c : {3, 1500}) expect_normalized_per_channel(kValues / c + 1, c, 21);
    Tensor x = random_tensor({kValues}, 24);
    std::vector<Tensor> out;
    ASSERT_TRUE(run("normalize", {x}, {{"scale", 2.5}, {"shift", -1}}, out).is_ok());
    for (std::size_t i = 0; i < x.values<float>().size(); ++i)
      ASSERT_NEAR(out[0].values<float>()[i], x.values<float>()[i] * 2.5f - 1.0f, 4e-7) << i;
  });
}

// The params form: one scale and shift for every element, each defaulting to the identity; x of
// any rank, its last axis long (one task's worth and more) or short.
TEST(Kernels, NormalizeWithParamsAppliesOneScaleAndShiftToAll) {
  for (Shape shape : {Shape{40000}, Shape{7, 3}, Shape{2, 3, 5}}) {
    Tensor x = random_tensor(shape, 14);
    std::vector<Tensor> out;
    ASSERT_TRUE(run("normalize", {x}, {{"scale", 2.5}, {"shift", -1}}, out).is_ok());
    ASSERT_EQ(out[0].shape(), shape);
    for (std::size_t i = 0; i < x.values<float>().size(); ++i)  // one rounding (fused) or two
      ASSERT_NEAR(out[0].values<float>()[i], x.values<float>()[i] * 2.5f - 1.0f, 4e-7) << i;
    ASSERT_TRUE(run("normalize", {x}, {{"shift", 3}}, out).is_ok());
    for (std::size_t i = 0; i < x.values<float>().size(); ++i)
      ASSERT_EQ(out[0].values<float>()[i], x.values<float>()[i] + 3.0f) << i;
  }
}

TEST(Kernels, PassthroughReturnsEveryInputUnchanged) {
  Tensor ints = Tensor::vector<std::int32_t>({1, -2, 3}, "ints");
  Tensor bytes = Tensor::vector<std::uint8_t>({255, 0}, "bytes");
  Tensor empty = Tensor::zeros(DType::kF64, {0, 3}, "empty");
  std::vector<Tensor> out;
  ASSERT_TRUE(run("passthrough", {ints, bytes, empty}, {}, out).is_ok());
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0].name(), "ints");
  EXPECT_EQ(std::vector<std::int32_t>(out[0].values<std::int32_t>().begin(), out[0].values<std::int32_t>().end()),
            (std::vector<std::int32_t>{1, -2, 3}));
  EXPECT_EQ(out[1].values<std::uint8_t>()[0], 255);
  EXPECT_EQ(out[2].shape(), (Shape{0, 3}));
}

TEST(Kernels, SleepHoldsForTheRequestedTime) {
  std::vector<Tensor> out;
  const auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(run("sleep", {}, {{"ms", 30}}, out).is_ok());
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(30));
  EXPECT_TRUE(out.empty());
}

struct BadCall {
  std::string kernel;
  std::vector<Tensor> inputs;
  Params params;
  std::string mentions;  // the message must name the problem
};

TEST(Kernels, RefuseBadArgumentsWithAMessageThatNamesTheProblem) {
  const Tensor f3 = Tensor::vector<float>({1, 2, 3});
  const Tensor f2 = Tensor::vector<float>({1, 2});
  const Tensor i3 = Tensor::vector<std::int32_t>({1, 2, 3});
  const Tensor m23 = Tensor::zeros(DType::kF32, {2, 3});
  const std::vector<BadCall> cases = {
      {"vector_add", {f3}, {}, "expects 2 input"},
      {"vector_add", {f3, f2}, {}, "same shape"},
      {"vector_add", {f3, i3}, {}, "must be f32, got i32"},
      {"saxpy", {f3, f3}, {}, "needs param 'alpha'"},
      {"saxpy", {f3, f3}, {{"alpha", NAN}}, "finite"},
      {"saxpy", {f3, f3}, {{"alpha", 1e300}}, "'alpha' is 1e+300, beyond float32's range"},
      {"normalize", {m23}, {{"scale", -3.5e38}}, "'scale' is -3.5e+38, beyond float32's range"},
      {"normalize", {m23}, {{"shift", INFINITY}}, "'shift' must be finite"},
      {"reduce_sum", {i3}, {}, "must be f32"},
      {"matmul", {m23, m23}, {}, "inner dimensions differ"},
      {"matmul", {f3, m23}, {}, "rank 2"},
      {"softmax", {Tensor::zeros(DType::kF32, {})}, {}, "rank >= 1"},
      {"sleep", {}, {{"ms", -1}}, "between 0 and 60000"},
      {"sleep", {f3}, {{"ms", 1}}, "expects 0 input"},
      {"resize", {m23}, {{"height", 0}, {"width", 4}}, "'height' must be a whole number from 1"},
      {"resize", {m23}, {{"height", 2.5}, {"width", 4}}, "whole number"},
      {"resize", {f3}, {{"height", 2}, {"width", 2}}, "must be [H,W] or [H,W,C]"},
      {"blur", {m23}, {{"sigma", 0}}, "'sigma' must be between 0.01 and 64"},
      {"blur", {m23}, {{"sigma", 1e-300}}, "'sigma' must be between 0.01 and 64"},
      {"normalize", {m23, f2, f3}, {}, "'scale' must have shape [3]"},
      {"normalize", {m23, f3, f3}, {{"scale", 2}}, "as tensors or as params, not both"},
  };
  for (const auto& c : cases) {
    std::vector<Tensor> out;
    Status s = run(c.kernel, c.inputs, c.params, out);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << c.kernel << ": " << s.to_string();
    EXPECT_NE(s.message().find(c.mentions), std::string::npos)
        << c.kernel << ": '" << s.message() << "' lacks '" << c.mentions << "'";
    EXPECT_EQ(s.message().rfind(c.kernel, 0), 0u) << "message should start with the kernel name: " << s.message();
  }
}

TEST(CpuBackend, RunsJobsConcurrentlyAndReportsDeadlinePassedInQueue) {
  CpuBackend backend({2});
  EXPECT_EQ(backend.device().kind, DeviceKind::kCpu);
  EXPECT_EQ(backend.device().multiprocessors, 2);
  std::mutex mutex;
  std::vector<std::unique_ptr<Execution>> done;
  Backend::Completion completion = [&](std::unique_ptr<Execution> e) {
    std::lock_guard lock(mutex);
    done.push_back(std::move(e));
  };
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 2; ++i) {
    auto e = std::make_unique<Execution>();
    e->kernel = KernelRegistry::global().find("sleep");
    e->params = {{"ms", 200}};
    backend.execute(std::move(e), completion);
  }
  auto late = std::make_unique<Execution>();
  late->kernel = KernelRegistry::global().find("sleep");
  late->params = {{"ms", 1}};
  late->deadline = std::chrono::steady_clock::now() - std::chrono::milliseconds(1);
  backend.execute(std::move(late), completion);
  backend.wait_idle();
  ASSERT_EQ(done.size(), 3u);
  // Two 200 ms sleeps on two threads finish together, well before 400 ms.
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(390));
  int deadline_exceeded = 0;
  for (auto& e : done) deadline_exceeded += e->status.code() == StatusCode::kDeadlineExceeded;
  EXPECT_EQ(deadline_exceeded, 1);
  EXPECT_GE(backend.metrics().free_memory_bytes, 0);
}

TEST(CpuBackend, ReusesOutputBuffersAndZeroesThemUnlessTheKernelWritesEveryElement) {
  CpuBackend backend({.threads = 1});
  const std::int64_t n = CpuBackend::kPooledOutputBytes / sizeof(float);
  OutputSpec spec{.name = "out", .dtype = DType::kF32, .shape = {n}, .zero_fill = false};
  const std::byte* first = nullptr;
  {
    Tensor t = backend.allocate_output(spec);
    first = t.bytes().data();
    std::memset(t.mutable_bytes().data(), 0xab, t.byte_size());  // another tenant's bytes, say
  }
  spec.zero_fill = true;  // a kernel that accumulates, or that may leave elements unwritten
  {
    Tensor t = backend.allocate_output(spec);
    EXPECT_EQ(t.bytes().data(), first) << "the block was not reused";
    for (float v : t.values<float>()) ASSERT_EQ(v, 0.0f);
    EXPECT_EQ(t.shape(), Shape{n});
    EXPECT_EQ(t.name(), "out");
  }
  const DeviceMetrics metrics = backend.metrics();
  EXPECT_EQ(metrics.pool_hits, 1u);
  EXPECT_EQ(metrics.pool_misses, 1u);
  EXPECT_EQ(metrics.pool_bytes_in_use, 0);
  EXPECT_GE(metrics.pool_bytes_cached, static_cast<std::int64_t>(CpuBackend::kPooledOutputBytes));
  // Small outputs come from the heap, not the pool; and a backend without a pool allocates anyway.
  spec.shape = {4};
  EXPECT_EQ(backend.allocate_output(spec).byte_size(), 16u);
  EXPECT_EQ(backend.metrics().pool_misses, 1u);
  CpuBackend unpooled({.threads = 1, .output_pool_bytes = 0});
  spec.shape = {n};
  EXPECT_EQ(unpooled.allocate_output(spec).byte_size(), CpuBackend::kPooledOutputBytes);
}

TEST(CpuBackend, RunsSmallJobsOfBytesBoundKernelsOnTheCallersThreadAndNothingElse) {
  CpuBackend backend({.threads = 1});
  auto job = [](const char* kernel, std::vector<Tensor> inputs, Params params = {}) {
    auto e = std::make_unique<Execution>();
    e->kernel = KernelRegistry::global().find(kernel);
    e->inputs = std::move(inputs);
    e->params = std::move(params);
    EXPECT_TRUE(e->kernel->plan(KernelArgs{e->inputs, &e->params}, e->planned).is_ok());
    return e;
  };
  auto small = job("vector_add", {Tensor::vector<float>({1, 2}), Tensor::vector<float>({10, 20})});
  EXPECT_TRUE(backend.runs_inline(*small));
  EXPECT_TRUE(small->outputs.empty()) << "runs_inline() only tells";
  ASSERT_TRUE(backend.run_inline(*small));
  EXPECT_TRUE(small->status.is_ok()) << small->status.to_string();
  EXPECT_EQ(small->ran_on, &backend.device());
  ASSERT_EQ(small->outputs.size(), 1u);
  EXPECT_EQ(small->outputs[0].values<float>()[1], 22.0f);
  // A deadline that passed is still reported as such, inline or not.
  auto late = job("passthrough", {Tensor::vector<float>({1})});
  late->deadline = std::chrono::steady_clock::now() - std::chrono::milliseconds(1);
  ASSERT_TRUE(backend.run_inline(*late));
  EXPECT_EQ(late->status.code(), StatusCode::kDeadlineExceeded);
  // Not inline: a kernel whose time is not its bytes' (however few), and a bytes-bound job too large.
  auto sleep = job("sleep", {}, {{"ms", 1}});
  EXPECT_FALSE(backend.runs_inline(*sleep));
  EXPECT_FALSE(backend.run_inline(*sleep));
  EXPECT_TRUE(sleep->outputs.empty());
  // softmax's rows cost besides their bytes: 32 KiB in rows of one value is no small job, in one row it is.
  EXPECT_FALSE(backend.runs_inline(*job("softmax", {random_tensor({8192, 1}, 3)})));
  EXPECT_TRUE(backend.runs_inline(*job("softmax", {random_tensor({1, 4096}, 3)})));
  EXPECT_TRUE(backend.runs_inline(*job("softmax", {random_tensor({16, 256}, 3)})));
  // Nor a pipeline of many steps over many empty tensors: each step and output costs besides its bytes.
  std::vector<Tensor> empties(64, Tensor::zeros(DType::kF64, {0}));
  auto piped = job("passthrough", empties);
  for (int i = 0; i < 16; ++i) {
    piped->then.emplace_back();
    piped->then.back().kernel = piped->kernel;
    piped->then.back().planned = piped->planned;
  }
  EXPECT_FALSE(backend.runs_inline(*piped));
  piped->then.clear();
  EXPECT_FALSE(backend.runs_inline(*piped)) << "64 outputs: 64 KiB of their cost alone";
  piped->planned.resize(8);
  piped->inputs.resize(8);
  EXPECT_TRUE(backend.runs_inline(*piped)) << "8 empty outputs and one step: a small job";
  const auto n = static_cast<std::int64_t>(CpuBackend::kInlineJobBytes / sizeof(float));
  auto large = job("vector_add", {random_tensor({n}, 1), random_tensor({n}, 2)});
  EXPECT_FALSE(backend.runs_inline(*large));
  EXPECT_FALSE(backend.run_inline(*large));
  EXPECT_TRUE(large->outputs.empty());
}

}  // namespace
}  // namespace bridge::worker
