// Cancellation: a stop request from the worker's socket thread reaching a kernel on a backend thread.
#include <gtest/gtest.h>

#include <thread>

#include "bridge/worker/cancellation.hpp"
#include "bridge/worker/cpu_backend.hpp"

namespace bridge::worker {
namespace {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

TEST(Cancellation, TheFirstRequestWins) {
  Cancellation c;
  EXPECT_FALSE(c.requested());
  EXPECT_TRUE(c.status().is_ok());
  c.request(StatusCode::kDeadlineExceeded, "deadline");
  c.request(StatusCode::kCancelled, "cancel");
  EXPECT_TRUE(c.requested());
  EXPECT_EQ(c.status().code(), StatusCode::kDeadlineExceeded);
  EXPECT_EQ(c.status().message(), "deadline");
}

TEST(Cancellation, AWaitEndsWhenAStopIsRequested) {
  Cancellation c;
  EXPECT_FALSE(c.wait_for(milliseconds(1)));
  std::thread stopper([&] {
    std::this_thread::sleep_for(milliseconds(20));
    c.request(StatusCode::kCancelled, "stop");
  });
  const auto start = Clock::now();
  EXPECT_TRUE(c.wait_for(std::chrono::seconds(30)));
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(10));
  stopper.join();
}

TEST(Cancellation, AHookBoundAfterTheRequestRunsAtOnceAndNotAfterUnbind) {
  Cancellation before;
  before.request(StatusCode::kCancelled, "early");
  int calls = 0;
  before.bind([&] { ++calls; });
  EXPECT_EQ(calls, 1);
  Cancellation after;
  after.bind([&] { ++calls; });
  after.unbind();
  after.request(StatusCode::kCancelled, "late");
  EXPECT_EQ(calls, 1);
}

std::unique_ptr<Execution> sleep_pipeline(int steps, double ms) {
  auto e = std::make_unique<Execution>();
  e->kernel = KernelRegistry::global().find("sleep");
  e->params = {{"ms", ms}};
  for (int i = 1; i < steps; ++i) e->then.push_back({.kernel = e->kernel, .params = {{"ms", ms}}});
  return e;
}

TEST(Cancellation, ARunningCpuJobStopsAndEndsWithTheStopsStatus) {
  auto e = sleep_pipeline(3, 10000);  // 30 s if nothing stopped it
  std::thread stopper([&] {
    std::this_thread::sleep_for(milliseconds(50));
    e->cancel->request(StatusCode::kDeadlineExceeded, "the job's deadline passed");
  });
  const auto start = Clock::now();
  run_on_cpu(*e);
  stopper.join();
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(10));
  EXPECT_EQ(e->status.code(), StatusCode::kDeadlineExceeded);
  EXPECT_EQ(e->step_compute_us.size(), 1u) << "later pipeline steps ran after the stop";
}

// One pixel of 4M channels at the largest sigma: seconds of work, and none of it in a row loop, so
// the stop must reach inside the image, within one chunk of values.
TEST(Cancellation, BlurStopsWithinAChunkWhateverTheImagesShape) {
  auto e = std::make_unique<Execution>();
  e->kernel = KernelRegistry::global().find("blur");
  e->inputs = {Tensor::zeros(DType::kF32, {1, 1, 4 << 20})};
  e->params = {{"sigma", 64}};
  ASSERT_TRUE(e->kernel->plan(KernelArgs{e->inputs, &e->params}, e->planned).is_ok());
  ASSERT_TRUE(
      prepare_execution(*e, [](const OutputSpec& s) { return Tensor::zeros(s.dtype, s.shape, s.name); }).is_ok());
  std::thread stopper([&] {
    std::this_thread::sleep_for(milliseconds(50));
    e->cancel->request(StatusCode::kCancelled, "stop");
  });
  const auto start = Clock::now();
  run_on_cpu(*e);
  stopper.join();
  EXPECT_EQ(e->status.code(), StatusCode::kCancelled);
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(2)) << "the blur ran on after the stop";
}

TEST(Cancellation, AJobStoppedBeforeItStartsRunsNothing) {
  auto e = sleep_pipeline(2, 10000);
  e->cancel->request(StatusCode::kCancelled, "cancelled by the client");
  run_on_cpu(*e);
  EXPECT_EQ(e->status.code(), StatusCode::kCancelled);
  EXPECT_TRUE(e->step_compute_us.empty());
}

}  // namespace
}  // namespace bridge::worker
