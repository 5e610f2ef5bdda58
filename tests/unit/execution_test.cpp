// Execution: what a backend sets up before a job runs and frees when it ends (backend.hpp).
#include <gtest/gtest.h>

#include "bridge/worker/cpu_backend.hpp"

namespace bridge::worker {
namespace {

Tensor zeros(const OutputSpec& s) { return Tensor::zeros(s.dtype, s.shape, s.name); }

std::unique_ptr<Execution> resize_pipeline(int steps, std::int64_t side) {
  auto e = std::make_unique<Execution>();
  e->kernel = KernelRegistry::global().find("resize");
  e->params = {{"height", static_cast<double>(side)}, {"width", static_cast<double>(side)}};
  for (int i = 1; i < steps; ++i) e->then.push_back({.kernel = e->kernel, .params = e->params});
  e->inputs = {Tensor::from<float>(std::vector<float>{2.f}, {1, 1})};
  // What the worker's planning gives each step: one side x side image.
  for (std::size_t i = 0; i < e->step_count(); ++i)
    e->step_planned(i) = {{.dtype = DType::kF32, .shape = {side, side}}};
  return e;
}

TEST(Execution, AFinishedPipelineKeepsOnlyItsResult) {
  auto e = resize_pipeline(3, 64);
  ASSERT_TRUE(prepare_execution(*e, zeros).is_ok());
  for (std::size_t i = 0; i < e->step_count(); ++i) ASSERT_EQ(e->step_outputs(i).size(), 1u);
  run_on_cpu(*e);
  ASSERT_TRUE(e->status.is_ok()) << e->status.to_string();
  const Tensor result = e->result()[0];
  e->release_working_memory();
  EXPECT_TRUE(e->inputs.empty());
  EXPECT_TRUE(e->step_outputs(0).empty()) << "the first step's outputs were kept";
  EXPECT_TRUE(e->step_outputs(1).empty()) << "the second step's outputs were kept";
  ASSERT_EQ(e->result().size(), 1u);
  EXPECT_EQ(e->result()[0].shape(), (Shape{64, 64}));
  EXPECT_EQ(e->result()[0].bytes().data(), result.bytes().data()) << "the result was replaced";
  EXPECT_FLOAT_EQ(e->result()[0].values<float>()[64 * 64 - 1], 2.f);
}

TEST(Execution, ASingleKernelJobKeepsItsOutputs) {
  auto e = resize_pipeline(1, 8);
  ASSERT_TRUE(prepare_execution(*e, zeros).is_ok());
  run_on_cpu(*e);
  ASSERT_TRUE(e->status.is_ok()) << e->status.to_string();
  e->release_working_memory();
  EXPECT_TRUE(e->inputs.empty());
  ASSERT_EQ(e->result().size(), 1u);
  EXPECT_FLOAT_EQ(e->result()[0].values<float>()[0], 2.f);
}

}  // namespace
}  // namespace bridge::worker
