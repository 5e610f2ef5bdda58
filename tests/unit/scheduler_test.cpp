// The broker's queue: fairness across tenants, order within one, re-queues, deadlines, filters.
#include <gtest/gtest.h>

#include <deque>
#include <memory>

#include "bridge/broker/scheduler.hpp"

namespace bridge::broker {
namespace {

std::uint64_t next_key = 1;

// The jobs the tests queue; in the broker, JobTable owns them and the scheduler only points at them.
std::deque<std::unique_ptr<Job>>& owned() {
  static std::deque<std::unique_ptr<Job>> jobs;
  return jobs;
}

Job& make_job(const std::string& tenant, const std::string& kernel = "k",
              Clock::duration timeout = std::chrono::hours(1), int priority = 0) {
  auto& job = owned().emplace_back(std::make_unique<Job>());
  job->priority = priority;
  job->key = next_key++;
  job->tenant = tenant;
  job->kernel = kernel;
  job->kernels = {kernel};
  job->received = Clock::now();
  job->deadline = job->received + timeout;
  return *job;
}

const auto kAny = [](const Job&) { return true; };

TEST(Scheduler, KeepsArrivalOrderWithinATenant) {
  Scheduler s;
  std::vector<std::uint64_t> keys;
  for (int i = 0; i < 5; ++i) {
    Job& job = make_job("a");
    keys.push_back(job.key);
    s.enqueue(job);
  }
  for (auto key : keys) EXPECT_EQ(s.next(kAny)->key, key);
  EXPECT_EQ(s.next(kAny), nullptr);
  EXPECT_TRUE(s.empty());
}

TEST(Scheduler, TenantsTakeTurnsSoABacklogCannotStarveOthers) {
  Scheduler s;
  for (int i = 0; i < 100; ++i) s.enqueue(make_job("big"));
  s.enqueue(make_job("small"));
  s.enqueue(make_job("small"));
  std::vector<std::string> order;
  for (int i = 0; i < 4; ++i) order.push_back(s.next(kAny)->tenant);
  // The small tenant's two jobs are served within the first four, not after 100 big ones.
  EXPECT_EQ(std::count(order.begin(), order.end(), "small"), 2) << order[0] << order[1] << order[2] << order[3];
}

TEST(Scheduler, BackloggedTenantsAreServedInProportionToTheirWeights) {
  Scheduler s;
  s.set_weight("gold", 3);
  s.set_weight("bronze", 1);
  for (int i = 0; i < 1000; ++i) {
    s.enqueue(make_job("gold"));
    s.enqueue(make_job("bronze"));
  }
  int gold = 0;
  for (int i = 0; i < 400; ++i) gold += s.next(kAny)->tenant == "gold";
  EXPECT_NEAR(gold, 300, 1);
}

TEST(Scheduler, IdleTimeIsNotSavedUpAsCredit) {
  Scheduler s;
  for (int i = 0; i < 100; ++i) s.enqueue(make_job("early"));
  for (int i = 0; i < 50; ++i) s.next(kAny);  // "early" is served alone for a while
  for (int i = 0; i < 100; ++i) s.enqueue(make_job("late"));
  int late = 0;
  for (int i = 0; i < 20; ++i) late += s.next(kAny)->tenant == "late";
  EXPECT_NEAR(late, 10, 1) << "equal weights share equally from the moment both are backlogged";
}

TEST(Scheduler, HigherPriorityFirstWithinATenantArrivalOrderWithinAPriority) {
  Scheduler s;
  s.enqueue(make_job("a", "k", std::chrono::hours(1), 0));
  Job& urgent = make_job("a", "k", std::chrono::hours(1), 5);
  const auto urgent_key = urgent.key;
  s.enqueue(urgent);
  s.enqueue(make_job("a", "k", std::chrono::hours(1), -3));
  EXPECT_EQ(s.next(kAny)->key, urgent_key);
  EXPECT_EQ(s.next(kAny)->priority, 0);
  EXPECT_EQ(s.next(kAny)->priority, -3);
}

TEST(Scheduler, RequeuedJobGoesFirst) {
  Scheduler s;
  s.enqueue(make_job("a"));
  Job& lost = make_job("a");
  const auto lost_key = lost.key;
  s.requeue(lost);
  EXPECT_EQ(s.next(kAny)->key, lost_key);
}

TEST(Scheduler, SkipsJobsTheWorkerCannotRun) {
  Scheduler s;
  s.enqueue(make_job("a", "gpu_only"));
  s.enqueue(make_job("a", "vector_add"));
  Job* job = s.next([](const Job& j) { return j.kernel == "vector_add"; });
  ASSERT_NE(job, nullptr);
  EXPECT_EQ(job->kernel, "vector_add");
  EXPECT_EQ(s.size(), 1u);
  EXPECT_EQ(s.next([](const Job& j) { return j.kernel == "vector_add"; }), nullptr);
  EXPECT_EQ(s.next(kAny)->kernel, "gpu_only");
}

TEST(Scheduler, ARemovedJobIsNeverServedAndFreesItsPlace) {
  Scheduler s;
  Job& gone = make_job("a");
  s.enqueue(gone);
  s.enqueue(make_job("a"));
  s.remove(gone);
  s.remove(gone);  // a second removal changes nothing
  EXPECT_EQ(s.size(), 1u);
  Job* job = s.next(kAny);
  ASSERT_NE(job, nullptr);
  EXPECT_NE(job->key, gone.key);
  EXPECT_EQ(s.next(kAny), nullptr);
  EXPECT_TRUE(s.empty());
}

TEST(Scheduler, RemovingADispatchedJobChangesNothing) {
  Scheduler s;
  s.enqueue(make_job("a"));
  Job* job = s.next(kAny);
  ASSERT_NE(job, nullptr);
  s.enqueue(make_job("a"));
  s.remove(*job);
  EXPECT_EQ(s.size(), 1u);
}

}  // namespace
}  // namespace bridge::broker
