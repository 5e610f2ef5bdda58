// Pipelines, dynamic batching and streams across real processes.
#include <gtest/gtest.h>

#include <thread>

#include "bridge/stream.hpp"
#include "fleet.hpp"
#include "random_tensor.hpp"

namespace bridge::testing {
namespace {

void expect_same(const Tensor& a, const Tensor& b) {
  ASSERT_EQ(a.shape(), b.shape());
  const auto x = a.values<float>(), y = b.values<float>();
  for (std::size_t i = 0; i < x.size(); ++i) ASSERT_FLOAT_EQ(x[i], y[i]) << "element " << i;
}

TEST(Pipelines, APipelineEqualsItsStagesRunOneByOne) {
  Fleet fleet({.workers = 1});
  Client client(fleet.client_options());
  const Tensor image = random_tensor({32, 48, 3}, 7);
  const std::map<std::string, double> resize{{"height", 16}, {"width", 20}}, blur{{"sigma", 1.5}},
      normalize{{"scale", 2}, {"shift", -0.5}};
  JobResult piped =
      client.run(Pipeline{}.then("resize", resize).then("blur", blur).then("normalize", normalize).request({image}));
  ASSERT_TRUE(piped.ok()) << piped.status.to_string();

  JobResult r1 = client.run({.kernel = "resize", .inputs = {image}, .params = resize});
  JobResult r2 = client.run({.kernel = "blur", .inputs = r1.outputs, .params = blur});
  JobResult r3 = client.run({.kernel = "normalize", .inputs = r2.outputs, .params = normalize});
  ASSERT_TRUE(r3.ok()) << r3.status.to_string();
  ASSERT_EQ(piped.outputs.size(), 1u);
  expect_same(piped.outputs[0], r3.outputs[0]);

  ASSERT_EQ(piped.stage_timings.size(), 3u);
  EXPECT_EQ(piped.stage_timings[0].kernel, "resize");
  EXPECT_EQ(piped.stage_timings[2].kernel, "normalize");
  std::chrono::microseconds sum{0};
  for (const auto& s : piped.stage_timings) sum += s.compute;
  EXPECT_EQ(sum, piped.timings.compute);
}

TEST(Pipelines, AStageThatRefusesItsInputsNamesItself) {
  Fleet fleet({.workers = 1});
  Client client(fleet.client_options());
  JobResult r = client.run(Pipeline{}.then("resize", {{"height", 4}, {"width", 4}}).then("blur", {{"sigma", -1}})
                               .request({random_tensor({8, 8}, 1)}));
  EXPECT_EQ(r.status.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status.message().find("pipeline step 2 of 2 (blur)"), std::string::npos) << r.status.message();
  JobResult unknown = client.run(
      Pipeline{}.then("resize", {{"height", 4}, {"width", 4}}).then("nope").request({random_tensor({8, 8}, 1)}));
  EXPECT_EQ(unknown.status.code(), StatusCode::kUnknownKernel) << unknown.status.to_string();
}

TEST(Batching, BatchedResultsMatchTheirUnbatchedTwins) {
  // One worker with many slots and a long delay, so that jobs sent together share launches. Each job
  // moves 96 KiB: more than a CPU worker runs on its socket thread, where nothing is batched.
  Fleet fleet({.workers = 1, .slots = 16, .worker_yaml_extra = "max_batch: 8\nmax_delay_us: 20000\n"});
  Client client(fleet.client_options());
  std::vector<std::vector<Tensor>> inputs;
  for (std::uint32_t i = 0; i < 32; ++i)
    inputs.push_back({random_tensor({64, 128}, i), random_tensor({64, 128}, 100 + i)});
  auto futures = client.submit_batch("saxpy", inputs, {{"alpha", 3}});
  int batched = 0;
  for (std::size_t i = 0; i < futures.size(); ++i) {
    JobResult r = futures[i].get();
    ASSERT_TRUE(r.ok()) << r.status.to_string() << fleet.logs();
    if (r.batch_size > 1) ++batched;
    EXPECT_LE(r.batch_size, 8);
    JobResult alone = client.run({.kernel = "saxpy", .inputs = inputs[i], .params = {{"alpha", 3}}});
    ASSERT_TRUE(alone.ok());
    expect_same(r.outputs[0], alone.outputs[0]);
  }
  EXPECT_GT(batched, 0) << "no job shared a launch";
  // Different params never share a launch.
  auto a = client.submit({.kernel = "saxpy", .inputs = inputs[0], .params = {{"alpha", 1}}});
  auto b = client.submit({.kernel = "saxpy", .inputs = inputs[0], .params = {{"alpha", 2}}});
  EXPECT_EQ(a.get().batch_size, 1);
  EXPECT_EQ(b.get().batch_size, 1);
  // Small jobs, which the worker runs on its socket thread as they come, never wait for company:
  // there is no launch to share, and stacking them would only add copies.
  std::vector<std::vector<Tensor>> small;
  for (std::uint32_t i = 0; i < 32; ++i) small.push_back({random_tensor({4, 64}, i), random_tensor({4, 64}, 100 + i)});
  for (auto& future : client.submit_batch("saxpy", small, {{"alpha", 3}})) {
    JobResult r = future.get();
    ASSERT_TRUE(r.ok()) << r.status.to_string();
    EXPECT_EQ(r.batch_size, 1);
  }
}

// Two tenants' clients that leave the request's tenant empty (the default: the key says it) send
// the same jobs at once: each tenant's jobs share launches, never the other's. The worker learns the
// tenant from the broker (Dispatch.tenant), not from the request's field.
TEST(Batching, TwoTenantsNeverShareALaunch) {
  Fleet fleet({.workers = 1,
               .slots = 8,
               .tenants_yaml = "defaults:\n  max_inflight_jobs: 100\ntenants:\n  alice: {}\n  bob: {}\n",
               .worker_yaml_extra = "max_batch: 8\nmax_delay_us: 300000\n"});
  Client::Options alice_options = fleet.client_options("alice"), bob_options = fleet.client_options("bob");
  alice_options.tenant.clear();
  bob_options.tenant.clear();
  Client alice(alice_options), bob(bob_options);
  // 96 KiB a job: more than a CPU worker runs on its socket thread, where nothing is batched.
  const std::vector<std::vector<Tensor>> inputs(2, {random_tensor({8192}, 1), random_tensor({8192}, 2)});
  auto from_alice = alice.submit_batch("vector_add", inputs);
  auto from_bob = bob.submit_batch("vector_add", inputs);
  int shared = 0;
  for (auto* futures : {&from_alice, &from_bob})
    for (auto& future : *futures) {
      JobResult r = future.get();
      ASSERT_TRUE(r.ok()) << r.status.to_string() << fleet.logs();
      EXPECT_LE(r.batch_size, 2) << "a launch held both tenants' jobs";
      if (r.batch_size == 2) ++shared;
    }
  EXPECT_GT(shared, 0) << "no tenant's two jobs shared a launch: the test proves nothing";
}

TEST(Streams, ResultsComeBackInWriteOrderAndTheWindowBoundsWhatIsUnread) {
  Fleet fleet({.workers = 2, .slots = 4});
  Client client(fleet.client_options());
  Stream stream = Stream::open(client, "softmax", {.window = 8, .block_when_full = false});
  std::vector<Tensor> items;
  for (std::uint32_t i = 0; i < 8; ++i) {
    items.push_back(random_tensor({3, 16}, i));
    ASSERT_TRUE(stream.write({items.back()}).is_ok());
  }
  Status full = stream.write({items[0]});
  EXPECT_EQ(full.code(), StatusCode::kResourceExhausted) << "fail-fast when the window is full";
  EXPECT_EQ(stream.outstanding(), 8u);
  // Blocking mode: a writer thread sends 40 more while this thread reads, in order.
  Stream blocking = Stream::open(client, "softmax", {.window = 4});
  std::thread writer([&] {
    for (std::uint32_t i = 0; i < 40; ++i) ASSERT_TRUE(blocking.write({random_tensor({2, 8}, 1000 + i)}).is_ok());
    blocking.close();
  });
  std::size_t read = 0;
  while (auto r = blocking.read()) {
    ASSERT_TRUE(r->ok()) << r->status.to_string();
    JobResult twin = client.run({.kernel = "softmax", .inputs = {random_tensor({2, 8}, 1000 + std::uint32_t(read))}});
    expect_same(r->outputs[0], twin.outputs[0]);
    EXPECT_LE(blocking.outstanding(), 4u);
    ++read;
  }
  writer.join();
  EXPECT_EQ(read, 40u);
  // The first stream drains in order too.
  stream.close();
  for (std::size_t i = 0; i < items.size(); ++i) {
    auto r = stream.read();
    ASSERT_TRUE(r && r->ok());
    JobResult twin = client.run({.kernel = "softmax", .inputs = {items[i]}});
    expect_same(r->outputs[0], twin.outputs[0]);
  }
  EXPECT_FALSE(stream.read().has_value());
}

}  // namespace
}  // namespace bridge::testing
