// DynamicBatcher: grouping by compatibility, bounds, and stacking/unstacking against unbatched runs.
#include <gtest/gtest.h>

#include "bridge/worker/batcher.hpp"
#include "bridge/worker/cpu_backend.hpp"
#include "random_tensor.hpp"

namespace bridge::worker {
namespace {

using testing::random_tensor;

std::unique_ptr<Execution> job(const char* kernel, std::vector<Tensor> inputs, Params params = {}) {
  auto e = std::make_unique<Execution>();
  e->tenant = "default";
  e->kernel = KernelRegistry::global().find(kernel);
  e->inputs = std::move(inputs);
  e->params = std::move(params);
  return e;
}

TEST(Batcher, OnlyCompatibleBatchableSingleStepJobsAreEligible) {
  DynamicBatcher batcher({.max_batch = 4});
  EXPECT_TRUE(batcher.eligible(*job("vector_add", {})));
  EXPECT_FALSE(batcher.eligible(*job("matmul", {})));  // not batchable
  auto actor = job("vector_add", {});
  actor->actor = "t/a";
  EXPECT_FALSE(batcher.eligible(*actor));
  DynamicBatcher off({.max_batch = 1});
  EXPECT_FALSE(off.eligible(*job("vector_add", {})));
  auto nobodys = job("vector_add", {});
  nobodys->tenant.clear();  // batches are one tenant's: a job of no known tenant is nobody's company
  EXPECT_FALSE(batcher.eligible(*nobodys));
}

TEST(Batcher, GroupsFillUpToMaxBatchAndFallDueAfterTheDelay) {
  DynamicBatcher batcher({.max_batch = 3, .max_delay_us = 1000});
  const auto t0 = DynamicBatcher::Clock::now();
  const Tensor a = random_tensor({8}, 1);
  EXPECT_FALSE(batcher.add(job("vector_add", {a, a}), t0));
  EXPECT_FALSE(batcher.add(job("vector_add", {random_tensor({9}, 2), a}), t0));  // other shape: own group
  EXPECT_FALSE(batcher.add(job("vector_add", {a, a}), t0));
  auto full = batcher.add(job("vector_add", {a, a}), t0);
  ASSERT_TRUE(full.has_value());
  EXPECT_EQ(full->size(), 3u);
  EXPECT_EQ(batcher.waiting(), 1u);
  EXPECT_TRUE(batcher.take_due(t0).empty());
  auto due = batcher.take_due(t0 + std::chrono::microseconds(1000));
  ASSERT_EQ(due.size(), 1u);
  EXPECT_EQ(due[0].size(), 1u);
  EXPECT_FALSE(batcher.next_due().has_value());
}

TEST(Batcher, OnlyOneTenantsJobsShareALaunch) {
  // A batch's size and time reach every member: across tenants they would tell one tenant that
  // another had just sent the same kernel, params and shapes.
  DynamicBatcher batcher({.max_batch = 2, .max_delay_us = 1000});
  const auto t0 = DynamicBatcher::Clock::now();
  const Tensor a = random_tensor({8}, 1);
  auto of = [&](const char* tenant) {
    auto e = job("vector_add", {a, a});
    e->tenant = tenant;
    return e;
  };
  EXPECT_FALSE(batcher.add(of("alice"), t0));
  EXPECT_FALSE(batcher.add(of("bob"), t0)) << "bob's job waits apart from alice's";
  auto full = batcher.add(of("alice"), t0);
  ASSERT_TRUE(full.has_value());
  ASSERT_EQ(full->size(), 2u);
  for (const auto& member : *full) EXPECT_EQ(member->tenant, "alice");
  EXPECT_EQ(batcher.waiting(), 1u);
}

TEST(Batcher, EachMemberGetsItsOutputsUnderTheNamesItPlanned) {
  // passthrough names each output after its input: a member must not get the first member's names.
  std::vector<std::unique_ptr<Execution>> members;
  for (const char* name : {"first_secret", "second", "third"}) {
    Tensor x = random_tensor({4}, 7);
    x.set_name(name);
    members.push_back(job("passthrough", {x}));
    ASSERT_TRUE(members.back()
                    ->kernel->plan(KernelArgs{members.back()->inputs, &members.back()->params}, members.back()->planned)
                    .is_ok());
  }
  auto combined = stack_batch(std::move(members));
  ASSERT_EQ(combined->batch_size, 3u);
  ASSERT_TRUE(prepare_execution(*combined, [](const OutputSpec& s) {
                return Tensor::zeros(s.dtype, s.shape, s.name);
              }).is_ok());
  run_on_cpu(*combined);
  ASSERT_TRUE(combined->status.is_ok()) << combined->status.to_string();
  auto split = unstack_batch(std::move(combined));
  ASSERT_EQ(split.size(), 3u);
  for (const auto& member : split) {
    ASSERT_EQ(member->outputs.size(), 1u);
    EXPECT_EQ(member->outputs[0].name(), member->inputs[0].name());
  }
}

TEST(Batcher, ABatchRunsUntilItsLatestMembersDeadlineNotItsEarliest) {
  // One job's short deadline must not fail another job that shares its launch.
  const auto now = std::chrono::steady_clock::now();
  std::vector<std::unique_ptr<Execution>> members;
  for (auto deadline : {now - std::chrono::seconds(1), now + std::chrono::seconds(30)}) {
    members.push_back(job("vector_add", {random_tensor({4}, 1), random_tensor({4}, 2)}));
    members.back()->deadline = deadline;
    ASSERT_TRUE(members.back()
                    ->kernel->plan(KernelArgs{members.back()->inputs, &members.back()->params}, members.back()->planned)
                    .is_ok());
  }
  auto combined = stack_batch(std::move(members));
  EXPECT_EQ(combined->deadline, now + std::chrono::seconds(30));
  CpuBackend backend({.threads = 1});
  ASSERT_TRUE(backend.run_inline(*combined)) << "a small batch of a bytes-bound kernel runs inline";
  EXPECT_TRUE(combined->status.is_ok()) << combined->status.to_string();
}

TEST(Batcher, AStackedLaunchGivesEachJobWhatItWouldGetAlone) {
  std::vector<std::unique_ptr<Execution>> members, twins;
  for (std::uint32_t i = 0; i < 5; ++i) {
    Tensor x = random_tensor({3, 7}, i), y = random_tensor({3, 7}, 50 + i);
    members.push_back(job("saxpy", {x, y}, {{"alpha", 0.5}}));
    twins.push_back(job("saxpy", {x, y}, {{"alpha", 0.5}}));
  }
  for (auto& m : members) ASSERT_TRUE(m->kernel->plan(KernelArgs{m->inputs, &m->params}, m->planned).is_ok());
  auto combined = stack_batch(std::move(members));
  ASSERT_EQ(combined->batch_size, 5u);
  EXPECT_TRUE(combined->inputs.empty()) << "stacking copies bytes: it belongs on the backend's thread";
  ASSERT_TRUE(prepare_execution(*combined, [](const OutputSpec& s) {
                return Tensor::zeros(s.dtype, s.shape, s.name);
              }).is_ok());
  ASSERT_EQ(combined->inputs[0].shape(), (Shape{5, 3, 7}));
  ASSERT_EQ(combined->outputs[0].shape(), (Shape{5, 3, 7}));
  run_on_cpu(*combined);
  ASSERT_TRUE(combined->status.is_ok());
  auto split = unstack_batch(std::move(combined));
  ASSERT_EQ(split.size(), 5u);
  for (std::size_t i = 0; i < split.size(); ++i) {
    std::vector<OutputSpec> specs;
    ASSERT_TRUE(twins[i]->kernel->plan(KernelArgs{twins[i]->inputs, &twins[i]->params}, specs).is_ok());
    twins[i]->outputs.push_back(Tensor::zeros(specs[0].dtype, specs[0].shape));
    run_on_cpu(*twins[i]);
    ASSERT_EQ(split[i]->outputs[0].shape(), (Shape{3, 7}));
    EXPECT_EQ(split[i]->batch_size, 5u);
    const auto got = split[i]->outputs[0].values<float>(), want = twins[i]->outputs[0].values<float>();
    for (std::size_t k = 0; k < got.size(); ++k) EXPECT_FLOAT_EQ(got[k], want[k]);
  }
}

}  // namespace
}  // namespace bridge::worker
