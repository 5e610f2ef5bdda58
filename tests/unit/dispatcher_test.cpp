// Dispatcher: jobs onto worker credits, and the Dispatch message, with a recording Send (no socket).
#include <gtest/gtest.h>

#include "bridge/broker/dispatcher.hpp"

namespace bridge::broker {
namespace {

using std::chrono::milliseconds;

struct Rig {
  JobTable jobs;
  WorkerRegistry workers;
  Scheduler scheduler;
  std::vector<core::Frames> sent;  // every message sent, routing id first
  bool link_up = true;
  std::vector<std::pair<std::uint64_t, std::string>> placed;  // (job key, worker) per Sent call
  milliseconds max_run{600000};
  Dispatcher dispatcher{jobs,
                        workers,
                        scheduler,
                        [this](core::Frames& frames) {
                          if (!link_up) return false;
                          sent.push_back(std::move(frames));
                          return true;
                        },
                        [this](const Job&) { return max_run; },
                        [this](Job& job, WorkerRecord& worker) { placed.emplace_back(job.key, worker.id); }};

  void add_worker(const std::string& id, std::uint32_t slots, std::uint32_t prefetch = 0) {
    WorkerRecord w;
    w.id = id;
    w.route = id + "/connection-1";
    w.slots = slots;
    w.prefetch = prefetch;
    w.kernels = {"k"};
    std::vector<Job*> orphaned;
    workers.upsert(std::move(w), orphaned);
  }
  Job& add_job(std::uint64_t key, milliseconds timeout = milliseconds(10000)) {
    auto job = std::make_unique<Job>();
    job->key = key;
    job->client = "c";
    job->client_job_id = key;
    job->tenant = "t";
    job->kernel = "k";
    job->kernels = {"k"};
    job->received = Clock::now();
    job->deadline = job->received + timeout;
    job->frames.emplace_back(std::string("client header"));
    job->frames.emplace_back(std::string("payload"));
    return *jobs.add(std::move(job));
  }
  const wire::Dispatch& dispatch_of(std::size_t i) {
    const wire::Envelope* envelope = nullptr;
    EXPECT_TRUE(core::decode_envelope(sent.at(i)[1], core::Limits{}, envelope).is_ok());
    return *envelope->body_as_Dispatch();
  }
};

TEST(Dispatcher, AJobGoesToAFreeWorkerAheadOfTheClientsOwnFrames) {
  Rig rig;
  rig.add_worker("w", 1);
  Job& job = rig.add_job(1);
  rig.dispatcher.route(job);
  ASSERT_EQ(rig.sent.size(), 1u);
  const core::Frames& frames = rig.sent[0];
  ASSERT_EQ(frames.size(), 4u);  // [worker id][Dispatch][client header][payload]
  EXPECT_EQ(frames[0].to_string(), "w/connection-1");  // the route of its hello, not its id
  EXPECT_EQ(frames[2].to_string(), "client header");
  EXPECT_EQ(frames[3].to_string(), "payload");
  EXPECT_EQ(job.state, JobState::kRunning);
  EXPECT_EQ(job.worker, "w");
  EXPECT_EQ(job.attempts, 1);
  EXPECT_EQ(rig.dispatch_of(0).dispatch_id(), job.dispatch_id);
  EXPECT_EQ(rig.workers.find("w")->inflight.size(), 1u);
  EXPECT_EQ(rig.placed, (std::vector<std::pair<std::uint64_t, std::string>>{{1, "w"}}));
  // The job keeps its frames, shared, for a second dispatch if its worker dies.
  EXPECT_EQ(job.frames.size(), 2u);
  EXPECT_EQ(job.frames[1].to_string(), "payload");
}

TEST(Dispatcher, NoFreeCreditMeansQueuedUntilOneFrees) {
  Rig rig;
  rig.add_worker("w", 1);
  Job& first = rig.add_job(1);
  Job& second = rig.add_job(2);
  rig.dispatcher.route(first);
  rig.dispatcher.route(second);
  EXPECT_EQ(second.state, JobState::kQueued);
  EXPECT_EQ(rig.sent.size(), 1u);
  rig.dispatcher.dispatch_queued();
  EXPECT_EQ(rig.sent.size(), 1u) << "no credit was free";
  rig.workers.find("w")->inflight.clear();  // the first job's result came back
  rig.dispatcher.dispatch_queued();
  ASSERT_EQ(rig.sent.size(), 2u);
  EXPECT_EQ(second.state, JobState::kRunning);
  EXPECT_NE(rig.dispatch_of(1).dispatch_id(), rig.dispatch_of(0).dispatch_id());
}

TEST(Dispatcher, AWorkerTakesItsSlotsAndItsPrefetchThenTheBrokerQueues) {
  Rig rig;
  rig.add_worker("w", 1, 2);
  std::vector<Job*> jobs;
  for (std::uint64_t key = 1; key <= 4; ++key) {
    jobs.push_back(&rig.add_job(key));
    rig.dispatcher.route(*jobs.back());
  }
  EXPECT_EQ(rig.sent.size(), 3u) << "one slot and two waiting places";
  EXPECT_EQ(rig.workers.find("w")->inflight.size(), 3u);
  EXPECT_EQ(jobs[3]->state, JobState::kQueued);
}

TEST(Dispatcher, IdleSlotsOnEveryWorkerFillBeforeAnyPrefetch) {
  Rig rig;
  std::vector<Job*> jobs;
  for (std::uint64_t key = 1; key <= 4; ++key) {
    jobs.push_back(&rig.add_job(key));
    rig.dispatcher.route(*jobs.back());  // no worker yet: queued
  }
  rig.add_worker("a", 2, 4);
  rig.add_worker("b", 2, 4);
  rig.dispatcher.dispatch_queued();
  EXPECT_EQ(rig.workers.find("a")->inflight.size(), 2u) << "a job must not wait on a while b has an idle slot";
  EXPECT_EQ(rig.workers.find("b")->inflight.size(), 2u);
  // A new job with both workers' slots busy waits on one of them rather than in the broker.
  Job& fifth = rig.add_job(5);
  rig.dispatcher.route(fifth);
  EXPECT_EQ(fifth.state, JobState::kRunning);
}

TEST(Dispatcher, QueuedJobsFillTheWorkersPrefetchQueuesEvenly) {
  Rig rig;
  for (std::uint64_t key = 1; key <= 6; ++key) rig.dispatcher.route(rig.add_job(key));  // no worker: queued
  rig.add_worker("a", 1, 4);
  rig.add_worker("b", 1, 4);
  rig.dispatcher.dispatch_queued();
  EXPECT_EQ(rig.workers.find("a")->inflight.size(), 3u) << "a slot and two waiting places each, not a filled first";
  EXPECT_EQ(rig.workers.find("b")->inflight.size(), 3u);
}

TEST(Dispatcher, TheTimeAJobMayRunIsTheSoonerOfItsDeadlineAndItsTenantsMaxRun) {
  Rig rig;
  rig.add_worker("w", 2);
  rig.max_run = milliseconds(200);
  Job& limited = rig.add_job(1, milliseconds(10000));
  rig.dispatcher.route(limited);
  EXPECT_LE(rig.dispatch_of(0).deadline_ms(), 10000u);
  EXPECT_GE(rig.dispatch_of(0).deadline_ms(), 9000u);
  EXPECT_EQ(rig.dispatch_of(0).max_run_ms(), 200u) << "the worker counts max_job_ms from the job's start";
  EXPECT_LT(limited.step_deadline, limited.deadline) << "the broker's timer must answer max_job_ms";
  EXPECT_LE(limited.step_deadline, Clock::now() + milliseconds(200));
  rig.max_run = milliseconds(600000);
  Job& plain = rig.add_job(2, milliseconds(300));
  rig.dispatcher.route(plain);
  EXPECT_LE(rig.dispatch_of(1).deadline_ms(), 300u);
  EXPECT_EQ(plain.step_deadline, Clock::time_point::max());
}

// A job sent to wait on a worker whose slots are taken has not begun to run: the broker's timer for
// its tenant's max_job_ms starts once every job ahead of it there is due, not at the dispatch.
TEST(Dispatcher, AJobWaitingOnAWorkerIsTimedForMaxRunFromWhenTheJobsAheadAreDue) {
  Rig rig;
  rig.add_worker("w", 1, 1);
  rig.max_run = milliseconds(1000);
  Job& running = rig.add_job(1, milliseconds(60000));
  rig.dispatcher.route(running);
  ASSERT_EQ(running.state, JobState::kRunning);
  const Clock::time_point ahead_due = running.due();
  Job& waiting = rig.add_job(2, milliseconds(60000));
  rig.dispatcher.route(waiting);
  ASSERT_EQ(waiting.state, JobState::kRunning);
  EXPECT_GE(waiting.step_deadline, ahead_due + milliseconds(1000));
  EXPECT_LT(waiting.step_deadline, waiting.deadline);
  EXPECT_EQ(rig.dispatch_of(1).max_run_ms(), 1000u);
}

TEST(Dispatcher, AFailedSendLeavesTheJobQueuedAndTheCreditFree) {
  Rig rig;
  rig.add_worker("w", 1);
  rig.link_up = false;
  Job& job = rig.add_job(1);
  rig.dispatcher.route(job);
  EXPECT_EQ(job.state, JobState::kQueued);
  EXPECT_TRUE(job.worker.empty());
  EXPECT_EQ(job.attempts, 0);
  EXPECT_TRUE(rig.workers.find("w")->inflight.empty());
  rig.link_up = true;
  rig.dispatcher.dispatch_queued();
  EXPECT_EQ(job.state, JobState::kRunning);
  EXPECT_EQ(rig.sent.size(), 1u);
}

}  // namespace
}  // namespace bridge::broker
