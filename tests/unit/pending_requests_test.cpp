// PendingRequests on its own: a send function that records what would go to the broker, and
// results handed in as the connection would after decoding them.
#include "bridge/core/pending_requests.hpp"

#include <gtest/gtest.h>

#include <optional>
#include <vector>

namespace bridge::core {
namespace {

using Clock = PendingRequests::Clock;
using std::chrono::milliseconds;

struct Harness {
  std::vector<std::string> sent;  // the first frame of each message sent
  Status next_send;               // what the next sends return
  std::vector<JobResult> answers;
  PendingRequests table;

  explicit Harness(PendingRequests::Policy policy = {})
      : table(policy, [this](Frames& frames) {
          sent.push_back(frames.empty() ? "" : frames[0].to_string());
          return next_send;
        }) {}

  void submit(std::uint64_t id, milliseconds timeout = milliseconds(1000)) {
    PendingRequest r;
    r.id = id;
    r.started = Clock::now();
    r.job_deadline = r.started + timeout;
    r.deadline = r.job_deadline;
    r.frames.emplace_back("job-" + std::to_string(id));
    r.on_result = [this](JobResult result) { answers.push_back(std::move(result)); };
    table.start(std::move(r));
  }
};

JobResult with_status(StatusCode code, milliseconds retry_after = milliseconds(0)) {
  JobResult r;
  r.status = Status(code, "test");
  r.retry_after = retry_after;
  return r;
}

TEST(PendingRequests, AJobIsAnsweredOnceByItsResultAndALateResultIsDropped) {
  Harness h;
  h.submit(1);
  EXPECT_EQ(h.sent, std::vector<std::string>{"job-1"});
  h.table.complete_job(1, with_status(StatusCode::kOk));
  h.table.complete_job(1, with_status(StatusCode::kOk));
  ASSERT_EQ(h.answers.size(), 1u);
  EXPECT_TRUE(h.answers[0].ok());
  EXPECT_TRUE(h.table.empty());
}

// An answered job's deadline goes with it: kept until it passed, a busy client held rate x timeout
// of them, and its loop woke at each one for nothing.
TEST(PendingRequests, AnAnsweredJobLeavesNoTimerBehind) {
  Harness h;
  h.submit(1, milliseconds(60000));
  h.submit(2, milliseconds(30000));
  ASSERT_TRUE(h.table.next_timer().has_value());
  h.table.complete_job(2, with_status(StatusCode::kOk));
  ASSERT_TRUE(h.table.next_timer().has_value());
  EXPECT_GT(*h.table.next_timer(), Clock::now() + milliseconds(45000)) << "job 2's deadline is still there";
  EXPECT_TRUE(h.table.cancel(1));
  EXPECT_FALSE(h.table.next_timer().has_value());
  EXPECT_EQ(h.answers.size(), 2u);
}

TEST(PendingRequests, AFailedSendAnswersAtOnceWithTheSendersReason) {
  Harness h;
  h.next_send = Status(StatusCode::kUnauthenticated, "key not enrolled");
  h.submit(1);
  ASSERT_EQ(h.answers.size(), 1u);
  EXPECT_EQ(h.answers[0].status.code(), StatusCode::kUnauthenticated);
  EXPECT_EQ(h.answers[0].job_id, 1u);
  EXPECT_TRUE(h.table.empty());
}

TEST(PendingRequests, ARefusalForAPassingReasonIsSentAgainAfterTheAdvisedDelayUntilAttemptsRunOut) {
  Harness h({.max_attempts = 2, .initial_backoff = milliseconds(1), .max_backoff = milliseconds(1)});
  h.submit(1);
  h.table.complete_job(1, with_status(StatusCode::kResourceExhausted, milliseconds(50)));
  EXPECT_TRUE(h.answers.empty()) << "a retry remains";
  ASSERT_TRUE(h.table.next_timer().has_value());
  EXPECT_GE(*h.table.next_timer(), Clock::now() + milliseconds(40)) << "never sooner than retry_after";
  h.table.on_timers(Clock::now());
  EXPECT_EQ(h.sent.size(), 1u) << "not due yet";
  h.table.on_timers(Clock::now() + milliseconds(60));
  EXPECT_EQ(h.sent, (std::vector<std::string>{"job-1", "job-1"})) << "the same frames, the same id";
  h.table.complete_job(1, with_status(StatusCode::kResourceExhausted));
  ASSERT_EQ(h.answers.size(), 1u) << "attempts used up: the refusal is the answer";
  EXPECT_EQ(h.answers[0].status.code(), StatusCode::kResourceExhausted);
}

TEST(PendingRequests, ARefusalThatIsNotPassingIsTheAnswer) {
  Harness h({.max_attempts = 5});
  h.submit(1);
  h.table.complete_job(1, with_status(StatusCode::kInvalidArgument));
  ASSERT_EQ(h.answers.size(), 1u);
  EXPECT_EQ(h.answers[0].status.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(h.sent.size(), 1u);
}

TEST(PendingRequests, NoRetryIsSentPastTheJobsTimeout) {
  Harness h({.max_attempts = 5});
  h.submit(1, milliseconds(10));
  h.table.complete_job(1, with_status(StatusCode::kQueueFull, milliseconds(1000)));
  ASSERT_EQ(h.answers.size(), 1u) << "the advised delay ends after the timeout";
  EXPECT_EQ(h.answers[0].status.code(), StatusCode::kQueueFull);
}

TEST(PendingRequests, AJobWithoutAnAnswerByItsDeadlineIsDeadlineExceededOnce) {
  Harness h({.broker = "tcp://127.0.0.1:1"});
  h.submit(1, milliseconds(5));
  h.table.on_timers(Clock::now() + milliseconds(10));
  h.table.on_timers(Clock::now() + milliseconds(20));
  ASSERT_EQ(h.answers.size(), 1u);
  EXPECT_EQ(h.answers[0].status.code(), StatusCode::kDeadlineExceeded);
  EXPECT_NE(h.answers[0].status.message().find("tcp://127.0.0.1:1"), std::string::npos);
  h.table.complete_job(1, with_status(StatusCode::kOk));
  EXPECT_EQ(h.answers.size(), 1u) << "a result after the deadline is dropped";
}

TEST(PendingRequests, ABrokerThatRestartedGetsThePendingJobsAgainOnce) {
  Harness h;
  h.submit(1);  // sent before the broker's incarnation is known: it went to the first one
  EXPECT_EQ(h.table.on_broker_incarnation(7), 0u);
  h.submit(2);
  EXPECT_EQ(h.table.on_broker_incarnation(7), 0u) << "the same broker: nothing to send again";
  EXPECT_EQ(h.table.on_broker_incarnation(9), 2u) << "a new incarnation lost both";
  EXPECT_EQ(h.table.on_broker_incarnation(9), 0u);
  EXPECT_EQ(h.sent, (std::vector<std::string>{"job-1", "job-2", "job-1", "job-2"}));
  h.table.complete_job(1, with_status(StatusCode::kOk));
  h.table.complete_job(1, with_status(StatusCode::kOk));  // the first broker's answer, arriving late
  EXPECT_EQ(h.answers.size(), 1u);
}

// The client left a silent broker: every pending job goes to the next one once it answers (even
// one sent before any broker was heard from), what is sent after the move goes once, and a control
// request is answered UNAVAILABLE at once, naming both brokers.
TEST(PendingRequests, AfterAMoveToAnotherBrokerThePendingJobsGoThereOnceAndControlsAreAnswered) {
  Harness h({.broker = "tcp://a:1"});
  h.submit(1);  // no broker known yet
  std::optional<Status> control;
  PendingRequest status_request;
  status_request.id = 2;
  status_request.started = Clock::now();
  status_request.deadline = status_request.job_deadline = status_request.started + milliseconds(1000);
  status_request.frames.emplace_back(std::string("status"));
  status_request.on_control = [&](Status s, const wire::Envelope*) { control = std::move(s); };
  h.table.start(std::move(status_request));
  h.table.moved_to("tcp://b:2");
  ASSERT_TRUE(control.has_value());
  EXPECT_EQ(control->code(), StatusCode::kUnavailable);
  EXPECT_NE(control->message().find("broker tcp://a:1 went silent"), std::string::npos) << control->message();
  EXPECT_NE(control->message().find("tcp://b:2"), std::string::npos) << control->message();
  h.submit(3);  // sent to the new broker
  EXPECT_EQ(h.table.on_broker_incarnation(5), 1u) << "job 1 went to the broker left behind; job 3 to this one";
  EXPECT_EQ(h.table.on_broker_incarnation(5), 0u);
  EXPECT_EQ(h.sent, (std::vector<std::string>{"job-1", "status", "job-3", "job-1"}));
  EXPECT_TRUE(h.answers.empty());
  EXPECT_EQ(h.table.size(), 2u);
}

TEST(PendingRequests, WithoutResendingAJobKeepsNoFramesAndIsNotSentAgain) {
  Harness h({.resend_after_restart = false});
  h.submit(1);
  EXPECT_EQ(h.table.on_broker_incarnation(7), 0u);
  EXPECT_EQ(h.table.on_broker_incarnation(9), 0u);
  EXPECT_EQ(h.sent.size(), 1u);
}

TEST(PendingRequests, CancelAnswersCancelledOnceAndFailAllAnswersEverythingLeft) {
  Harness h;
  h.submit(1);
  h.submit(2);
  std::optional<Status> control;
  PendingRequest status_request;
  status_request.id = 3;
  status_request.started = Clock::now();
  status_request.deadline = status_request.job_deadline = status_request.started + milliseconds(1000);
  status_request.frames.emplace_back("status");
  status_request.on_control = [&](Status s, const wire::Envelope*) { control = std::move(s); };
  h.table.start(std::move(status_request));
  EXPECT_TRUE(h.table.cancel(1));
  EXPECT_FALSE(h.table.cancel(1));
  EXPECT_FALSE(h.table.cancel(3)) << "only jobs are cancelled";
  h.table.fail_all(Status(StatusCode::kCancelled, "client is shutting down"));
  ASSERT_EQ(h.answers.size(), 2u);
  EXPECT_EQ(h.answers[0].status.code(), StatusCode::kCancelled);
  EXPECT_EQ(h.answers[1].status.code(), StatusCode::kCancelled);
  ASSERT_TRUE(control.has_value());
  EXPECT_EQ(control->code(), StatusCode::kCancelled);
  EXPECT_TRUE(h.table.empty());
  EXPECT_FALSE(h.table.next_timer().has_value());
}

}  // namespace
}  // namespace bridge::core
