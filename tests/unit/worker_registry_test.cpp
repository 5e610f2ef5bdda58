// The broker's view of workers: credits, kernel routing, placement, liveness, re-registration.
#include <gtest/gtest.h>

#include "bridge/broker/worker_registry.hpp"
#include "bridge/core/liveness.hpp"

namespace bridge::broker {
namespace {

// A job for occupying a credit; JobTable owns jobs in the broker, the registry only points at them.
Job& idle_job() {
  static Job job;
  return job;
}

WorkerRecord worker(const std::string& id, std::uint32_t slots, DeviceKind kind = DeviceKind::kCpu,
                    std::vector<std::string> kernels = {"vector_add", "matmul"}) {
  WorkerRecord w;
  w.id = id;
  w.route = id + "/1";
  w.incarnation = 1;
  w.slots = slots;
  w.device.kind = kind;
  w.kernels = std::move(kernels);
  w.last_seen = Clock::now();
  return w;
}

Job job_for(const std::string& kernel, Placement placement = Placement::kAny) {
  Job j;
  j.kernel = kernel;
  j.kernels = {kernel};
  j.placement = placement;
  return j;
}

void occupy(WorkerRecord& w, std::uint64_t dispatch_id) { w.inflight.emplace(dispatch_id, &idle_job()); }

TEST(WorkerRegistry, SelectsOnlyWorkersWithTheKernelAndAFreeSlot) {
  WorkerRegistry r;
  std::vector<Job*> orphaned;
  r.upsert(worker("a", 1, DeviceKind::kCpu, {"vector_add"}), orphaned);
  r.upsert(worker("b", 1, DeviceKind::kCpu, {"matmul"}), orphaned);
  EXPECT_EQ(r.select(job_for("matmul"))->id, "b");
  occupy(*r.find("b"), 1);
  EXPECT_EQ(r.select(job_for("matmul")), nullptr);  // never beyond its credits
  EXPECT_EQ(r.select(job_for("softmax")), nullptr);
  EXPECT_TRUE(r.any_has_kernel("matmul"));
  EXPECT_FALSE(r.any_has_kernel("softmax"));
}

TEST(WorkerRegistry, PrefersTheWorkerWithMostFreeSlotsThenTheLongestIdle) {
  WorkerRegistry r;
  std::vector<Job*> orphaned;
  r.upsert(worker("a", 4), orphaned);
  r.upsert(worker("b", 4), orphaned);
  occupy(*r.find("a"), 1);
  EXPECT_EQ(r.select(job_for("vector_add"))->id, "b");
  occupy(*r.find("b"), 2);
  r.find("a")->last_dispatch = Clock::now();
  EXPECT_EQ(r.select(job_for("vector_add"))->id, "b");  // equal free slots: b waited longer
}

TEST(WorkerRegistry, HonoursPlacementHints) {
  WorkerRegistry r;
  std::vector<Job*> orphaned;
  r.upsert(worker("cpu", 8), orphaned);
  EXPECT_EQ(r.select(job_for("matmul", Placement::kRequireGpu)), nullptr);
  EXPECT_FALSE(r.could_run({"matmul"}, Placement::kRequireGpu));
  EXPECT_EQ(r.select(job_for("matmul", Placement::kPreferGpu))->id, "cpu");  // falls back to a CPU
  r.upsert(worker("gpu", 1, DeviceKind::kCuda), orphaned);
  EXPECT_EQ(r.select(job_for("matmul", Placement::kPreferGpu))->id, "gpu");  // even with fewer free slots
  EXPECT_EQ(r.select(job_for("matmul", Placement::kRequireGpu))->id, "gpu");
  EXPECT_EQ(r.select(job_for("matmul", Placement::kCpuOnly))->id, "cpu");
}

// With prefetch, a worker whose slots are all taken can still take a job, to wait there: any worker
// with an idle slot comes first, a busy GPU with much free memory included; then the waiting places.
TEST(WorkerRegistry, AnIdleSlotAnywhereComesBeforeAnyWorkersPrefetchQueue) {
  WorkerRegistry r;
  std::vector<Job*> orphaned;
  WorkerRecord busy_gpu = worker("busy-gpu", 1, DeviceKind::kCuda);
  busy_gpu.prefetch = 2;
  busy_gpu.device.total_memory_bytes = 100;
  busy_gpu.metrics.free_memory_bytes = 90;
  r.upsert(std::move(busy_gpu), orphaned);
  occupy(*r.find("busy-gpu"), 1);
  WorkerRecord gpu = worker("gpu", 4, DeviceKind::kCuda);
  gpu.device.total_memory_bytes = 100;
  gpu.metrics.free_memory_bytes = 60;
  r.upsert(std::move(gpu), orphaned);
  for (std::uint64_t id = 2; id < 5; ++id) occupy(*r.find("gpu"), id);  // one slot of four idle
  EXPECT_EQ(r.select(job_for("matmul", Placement::kPreferGpu))->id, "gpu");
  occupy(*r.find("gpu"), 5);
  EXPECT_EQ(r.select(job_for("matmul", Placement::kPreferGpu))->id, "busy-gpu");  // only its queue has room
  r.upsert(worker("cpu", 2), orphaned);
  EXPECT_EQ(r.select(job_for("matmul", Placement::kPreferGpu))->id, "cpu") << "an idle CPU slot before a GPU's queue";
}

TEST(WorkerRegistry, DrainingWorkerGetsNoNewJobs) {
  WorkerRegistry r;
  std::vector<Job*> orphaned;
  r.upsert(worker("a", 2), orphaned).worker.draining = true;
  EXPECT_EQ(r.select(job_for("matmul")), nullptr);
  EXPECT_FALSE(r.could_run({"matmul"}, Placement::kAny));
}

TEST(WorkerRegistry, RehelloFromSameProcessKeepsJobsNewProcessOrphansThem) {
  WorkerRegistry r;
  std::vector<Job*> orphaned;
  occupy(r.upsert(worker("a", 2), orphaned).worker, 7);
  r.upsert(worker("a", 3), orphaned);  // same incarnation: it reconnected
  EXPECT_TRUE(orphaned.empty());
  EXPECT_EQ(r.find("a")->inflight.size(), 1u);
  EXPECT_EQ(r.find("a")->slots, 3u);
  WorkerRecord restarted = worker("a", 2);
  restarted.incarnation = 2;
  r.upsert(std::move(restarted), orphaned);
  EXPECT_EQ(orphaned.size(), 1u);
  EXPECT_TRUE(r.find("a")->inflight.empty());
}

// A hello on a newer connection of the same process: what the broker sent on older connections and
// the worker does not list never arrived (or its result went down with the connection): let go.
TEST(WorkerRegistry, ANewerConnectionKeepsTheJobsItListsAndLetsTheOthersGo) {
  WorkerRegistry r;
  std::vector<Job*> let_go;
  Job held, lost;
  WorkerRecord first = worker("a", 2);
  first.connection = 1;
  WorkerRecord& a = r.upsert(std::move(first), let_go).worker;
  a.inflight.emplace(10, &held);
  a.inflight.emplace(11, &lost);
  WorkerRecord second = worker("a", 2);
  second.connection = 2;
  second.route = "a/2";
  const auto registered = r.upsert(std::move(second), let_go, {10, 99});
  EXPECT_EQ(registered.kind, HelloKind::kNewConnection);
  ASSERT_EQ(let_go.size(), 1u);
  EXPECT_EQ(let_go[0], &lost);
  EXPECT_EQ(registered.worker.inflight.size(), 1u);
  EXPECT_EQ(registered.worker.inflight.count(10), 1u);
  // Everything for it goes to the new connection; the old one is nobody's.
  EXPECT_EQ(r.find_by_route("a/2"), &registered.worker);
  EXPECT_EQ(r.find_by_route("a/1"), nullptr);
}

// A closed connection's hello delivered after a newer one's: it changes nothing, and the worker's
// messages keep going to the newer connection.
TEST(WorkerRegistry, AStaleHelloFromAnOlderConnectionChangesNothing) {
  WorkerRegistry r;
  std::vector<Job*> let_go;
  WorkerRecord newer = worker("a", 2);
  newer.connection = 3;
  newer.route = "a/3";
  occupy(r.upsert(std::move(newer), let_go).worker, 7);
  WorkerRecord stale = worker("a", 5);
  stale.connection = 2;
  stale.route = "a/2";
  const auto registered = r.upsert(std::move(stale), let_go, {});
  EXPECT_EQ(registered.kind, HelloKind::kStale);
  EXPECT_TRUE(let_go.empty());
  EXPECT_EQ(registered.worker.slots, 2u);
  EXPECT_EQ(registered.worker.inflight.size(), 1u);
  EXPECT_EQ(r.find_by_route("a/3"), &registered.worker);
  EXPECT_EQ(r.find_by_route("a/2"), nullptr);
  // Removed, its route is forgotten too.
  EXPECT_EQ(r.remove("a").size(), 1u);
  EXPECT_EQ(r.find_by_route("a/3"), nullptr);
}

// Two workers that present the same routing id (a takeover): removing the first must not forget
// the route the second now holds.
TEST(WorkerRegistry, RemovingAWorkerForgetsOnlyItsOwnRoute) {
  WorkerRegistry r;
  std::vector<Job*> let_go;
  r.upsert(worker("a", 1), let_go);
  WorkerRecord b = worker("b", 1);
  b.route = "a/1";
  r.upsert(std::move(b), let_go);
  r.remove("a");
  ASSERT_NE(r.find_by_route("a/1"), nullptr);
  EXPECT_EQ(r.find_by_route("a/1")->id, "b");
}

TEST(WorkerRegistry, FindsSilentWorkersAndHandsBackTheirJobsOnRemoval) {
  WorkerRegistry r;
  std::vector<Job*> orphaned;
  auto& a = r.upsert(worker("a", 2), orphaned).worker;
  a.heartbeat_ms = 100;
  a.last_seen = Clock::now() - std::chrono::milliseconds(500);
  occupy(a, 1);
  occupy(a, 2);
  r.upsert(worker("b", 2), orphaned).worker.heartbeat_ms = 100;
  EXPECT_EQ(r.silent_since(Clock::now(), 3), std::vector<std::string>{"a"});
  EXPECT_EQ(r.remove("a").size(), 2u);
  EXPECT_EQ(r.find("a"), nullptr);
  EXPECT_EQ(r.size(), 1u);
}

TEST(WorkerRegistry, AWorkerThatAnnouncedALargeMessageIsWaitedForItsTransferTime) {
  WorkerRegistry r;
  std::vector<Job*> orphaned;
  auto& a = r.upsert(worker("a", 2), orphaned).worker;
  a.heartbeat_ms = 100;
  a.last_seen = Clock::now() - std::chrono::milliseconds(500);
  a.transfer_grace = core::transfer_grace(64ull << 20, 16, core::Limits{});  // 64 MiB at 16 MiB/s: 4 s
  EXPECT_TRUE(r.silent_since(Clock::now(), 3).empty());
  EXPECT_EQ(r.silent_since(Clock::now() + std::chrono::milliseconds(4000), 3), std::vector<std::string>{"a"});
}

TEST(WorkerRegistry, TimeTheBrokersIoThreadSpentOnItsOwnLargeSendsIsNotSilence) {
  using std::chrono::milliseconds;
  WorkerRegistry r;
  std::vector<Job*> orphaned;
  auto& a = r.upsert(worker("a", 2), orphaned).worker;
  a.heartbeat_ms = 100;  // liveness 3: 300 ms
  const auto t0 = Clock::now();
  a.last_seen = t0;
  // Two 1 s sends, the second made while the first is still going: busy from t0 + 100 to t0 + 2100.
  r.own_sends().note(t0 + milliseconds(100), milliseconds(1000));
  r.own_sends().note(t0 + milliseconds(600), milliseconds(1000));
  EXPECT_EQ(r.own_sends().busy_between(t0, t0 + milliseconds(3000)), milliseconds(2000));
  EXPECT_EQ(r.own_sends().busy_between(t0 + milliseconds(1000), t0 + milliseconds(1500)), milliseconds(500));
  EXPECT_TRUE(r.silent_since(t0 + milliseconds(2300), 3).empty());  // 2.3 s, of which 0.3 s could be read
  EXPECT_EQ(r.silent_since(t0 + milliseconds(2500), 3), std::vector<std::string>{"a"});
  // A worker heard from after the sends ended is judged on its own silence alone.
  a.last_seen = t0 + milliseconds(2200);
  EXPECT_TRUE(r.silent_since(t0 + milliseconds(2400), 3).empty());
  EXPECT_EQ(r.silent_since(t0 + milliseconds(2600), 3), std::vector<std::string>{"a"});
}

TEST(WorkerRegistry, ABrokerAlwaysSendingStillCountsADeadWorkerDeadPastTheCap) {
  using std::chrono::milliseconds;
  WorkerRegistry r;
  r.own_sends().set_cap(milliseconds(1000));
  std::vector<Job*> orphaned;
  auto& a = r.upsert(worker("a", 2), orphaned).worker;
  a.heartbeat_ms = 100;
  const auto t0 = Clock::now();
  a.last_seen = t0;
  for (int i = 0; i < 10; ++i) r.own_sends().note(t0 + milliseconds(500 * i), milliseconds(500));  // busy for 5 s
  EXPECT_TRUE(r.silent_since(t0 + milliseconds(1250), 3).empty());          // 1.25 s silent, 1 s of it excused
  EXPECT_EQ(r.silent_since(t0 + milliseconds(1400), 3), std::vector<std::string>{"a"});  // past 0.3 s + the cap
}

}  // namespace
}  // namespace bridge::broker
