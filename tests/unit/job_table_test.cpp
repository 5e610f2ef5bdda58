// JobTable: one owner per job, counts per state, and the one deadline timer.
#include <gtest/gtest.h>

#include <memory>

#include "bridge/broker/job_table.hpp"

namespace bridge::broker {
namespace {

std::unique_ptr<Job> make_job(std::uint64_t key, const std::string& client, std::uint64_t client_job_id,
                              Clock::time_point deadline) {
  auto job = std::make_unique<Job>();
  job->key = key;
  job->client = client;
  job->client_job_id = client_job_id;
  job->deadline = deadline;
  return job;
}

TEST(JobTable, ADuplicateOfAHeldJobIsRefusedAndTheFirstKept) {
  JobTable t;
  const auto later = Clock::now() + std::chrono::hours(1);
  Job* first = t.add(make_job(1, "c", 7, later));
  ASSERT_NE(first, nullptr);
  EXPECT_EQ(t.add(make_job(2, "c", 7, later)), nullptr);
  EXPECT_NE(t.add(make_job(3, "other", 7, later)), nullptr) << "job ids are per client";
  EXPECT_EQ(t.find("c", 7), first);
  EXPECT_EQ(t.size(), 2u);
  t.erase(*first);
  EXPECT_EQ(t.find("c", 7), nullptr);
  EXPECT_NE(t.add(make_job(4, "c", 7, later)), nullptr) << "an ended job's id may be used again";
}

TEST(JobTable, AnAnsweredJobGivesUpItsIdWhileItWaitsForItsWorker) {
  JobTable t;
  const auto later = Clock::now() + std::chrono::hours(1);
  Job* first = t.add(make_job(1, "c", 7, later));
  t.set_state(*first, JobState::kCancelling);  // answered at its deadline; the worker still runs it
  EXPECT_EQ(t.find("c", 7), nullptr);
  Job* retry = t.add(make_job(2, "c", 7, later));
  ASSERT_NE(retry, nullptr) << "the client's retry with the same id was dropped";
  t.erase(*first);  // the worker let go of the first run
  EXPECT_EQ(t.find("c", 7), retry);
  EXPECT_EQ(t.size(), 1u);
}

TEST(JobTable, CountsFollowTheStates) {
  JobTable t;
  Job* job = t.add(make_job(1, "c", 1, Clock::now() + std::chrono::hours(1)));
  EXPECT_EQ(t.count(JobState::kAdmitting), 1u);
  EXPECT_EQ(t.waiting(), 1u);
  t.set_state(*job, JobState::kRunning);
  EXPECT_EQ(t.count(JobState::kAdmitting), 0u);
  EXPECT_EQ(t.count(JobState::kRunning), 1u);
  EXPECT_EQ(t.waiting(), 0u);
  t.erase(*job);
  EXPECT_EQ(t.count(JobState::kRunning), 0u);
}

TEST(JobTable, HandsBackEachOverdueJobOnceEvenWhenArmedTwiceForOneTime) {
  JobTable t;
  const auto now = Clock::now();
  Job* job = t.add(make_job(1, "c", 1, now + std::chrono::milliseconds(5)));
  // A step limit later than the deadline leaves due() at the deadline: a second timer for it.
  job->step_deadline = now + std::chrono::seconds(10);
  t.watch(*job);
  EXPECT_TRUE(t.overdue(now).empty());
  EXPECT_EQ(t.next_due(), now + std::chrono::milliseconds(5));
  const auto keys = t.overdue(now + std::chrono::milliseconds(6));
  ASSERT_EQ(keys.size(), 1u);
  EXPECT_EQ(keys[0], 1u);
  EXPECT_TRUE(t.overdue(now + std::chrono::seconds(20)).empty()) << "handed back once per arming";
}

TEST(JobTable, AStepLimitBeforeTheDeadlineFiresFirstAndAnEndedJobNever) {
  JobTable t;
  const auto now = Clock::now();
  Job* a = t.add(make_job(1, "c", 1, now + std::chrono::seconds(10)));
  a->step_deadline = now + std::chrono::milliseconds(5);  // admission or max_job_ms
  t.watch(*a);
  Job* b = t.add(make_job(2, "c", 2, now + std::chrono::milliseconds(1)));
  t.erase(*b);
  const auto keys = t.overdue(now + std::chrono::milliseconds(6));
  ASSERT_EQ(keys.size(), 1u);
  EXPECT_EQ(keys[0], 1u);
  // The step finished (limit lifted): the deadline timer armed at add() is still there.
  a->step_deadline = Clock::time_point::max();
  EXPECT_TRUE(t.overdue(now + std::chrono::seconds(1)).empty());
  EXPECT_EQ(t.overdue(now + std::chrono::seconds(11)).size(), 1u);
}

TEST(JobTable, AnAnsweredJobIsNotOverdue) {
  JobTable t;
  const auto now = Clock::now();
  Job* job = t.add(make_job(1, "c", 1, now + std::chrono::milliseconds(1)));
  t.set_state(*job, JobState::kCancelling);
  EXPECT_TRUE(t.overdue(now + std::chrono::seconds(1)).empty());
}

}  // namespace
}  // namespace bridge::broker
