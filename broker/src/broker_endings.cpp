// BrokerService: answers and endings, the one place a job ends (see broker_service.hpp and
// docs/architecture.md, "A job's states").
#include <spdlog/spdlog.h>

#include "bridge/broker/broker_service.hpp"
#include "bridge/core/job_codec.hpp"
#include "bridge/core/protocol.hpp"

namespace bridge::broker {

void BrokerService::finish(Job& job, core::Frames result) {
  std::uint64_t bytes = 0;
  for (const auto& frame : result) bytes += frame.size();
  // What the client holds counts towards its tenant too (max_unread_tenant_bytes); the ledger forgets
  // a client that holds nothing, so this is said again with every answer.
  ledger_.belongs_to(job.client, job.tenant);
  if (ledger_.withhold(job.client, bytes)) {
    // Jobs already in flight can each bring a result: the budget is only a bound if it holds here too.
    metrics_.quota_refused(job.tenant, "max_unread_result_bytes");
    return fail(job,
                {StatusCode::kResourceExhausted,
                 "the job ran, but its result (" + std::to_string(bytes) + " bytes) was withheld: this client has " +
                     std::to_string(ledger_.unread_bytes(job.client)) +
                     " bytes of results it has not read, and with it would pass the broker's "
                     "max_unread_result_bytes of " +
                     std::to_string(options_.max_unread_result_bytes) +
                     (job.actor.empty() ? "" : "; the actor call's kept outputs, if any, were saved") +
                     ". Read your results as they come"},
                options_.retry_after_ms);
  }
  {
    const auto* r = flatbuffers::GetRoot<wire::Envelope>(result[0].data())->body_as_JobResult();
    metrics_.job_answered(job, core::from_wire(r->status()), core::view(r->fallback_reason()),
                          core::view(r->worker_id()));
  }
  if (bindings_.deliverable(job.client, job.client_key))
    reply(job.client, std::move(result), job.batches);
  else
    spdlog::debug("client {} job {}: result not sent: the client's connection closed (ClientBindings)", job.client,
                  job.client_job_id);
  release(job);
}

void BrokerService::fail(Job& job, const Status& status, std::uint32_t retry_after_ms) {
  if (job.answered()) return;  // one answer per job
  metrics_.job_answered(job, status.code(), {}, {});
  spdlog::debug("client {} job {} ({}/{}, {}): {}", job.client, job.client_job_id, job.tenant, job.kernel,
                job_state_name(job.state), status.to_string());
  if (bindings_.deliverable(job.client, job.client_key))
    reply_error(job.client, job.client_job_id, status, retry_after_ms, job.batches);
  if (!job.held_outside()) return release(job);
  // A worker runs it (or a write is in flight): it keeps the credit, the lease and the actor's turn
  // until they let go, so that the tenant never holds more than it was granted.
  job.step_deadline = Clock::time_point::max();
  if (!job.worker.empty()) {
    send_cancel(
        job, status.code() == StatusCode::kDeadlineExceeded ? StatusCode::kDeadlineExceeded : StatusCode::kCancelled);
    // A worker that keeps the job past this is declared lost (answer_overdue): a hung kernel, or a
    // worker that ignores Cancel, cannot hold a tenant's slots for longer.
    job.step_deadline = Clock::now() + std::chrono::milliseconds(options_.cancel_grace_ms);
  }
  jobs_.set_state(job, JobState::kCancelling);
  jobs_.watch(job);
}

void BrokerService::release(Job& job) {
  switch (job.state) {  // off whatever still refers to it
    case JobState::kQueued: scheduler_.remove(job); break;
    default: break;
  }
  admission_.ended(job);
  actor_calls_.ended(job);
  bindings_.job_ended(job.client);
  jobs_.erase(job);
}

void BrokerService::send_cancel(const Job& job, StatusCode reason) {
  core::Frames frames;
  frames.push_back(core::protocol::encode(core::protocol::Cancel{job.dispatch_id, reason}));
  send_to_worker(job.worker, std::move(frames));
}

void BrokerService::handle_cancel(const std::string& client, const wire::CancelRequest& request) {
  Job* job = jobs_.find(client, request.job_id());
  // Unknown or answered: its answer has gone or is on its way; a cancel changes nothing then.
  if (job == nullptr || job->answered()) return;
  // An actor call whose state is being saved has run: its result follows, and a CANCELLED answer
  // would hide an effect that happened.
  if (job->state == JobState::kWritingThrough) return;
  spdlog::debug("client {} cancelled job {} ({})", client, request.job_id(), job_state_name(job->state));
  fail(*job, {StatusCode::kCancelled, "cancelled by the client"});
}

Status BrokerService::over_max_job_ms(const Job& job, const std::string& worker) const {
  const TenantQuota* quota = tenants_.find(job.tenant);
  return {StatusCode::kDeadlineExceeded,
          "the job ran on worker " + worker + " longer than tenant '" + job.tenant + "' may (max_job_ms " +
              std::to_string(quota != nullptr ? quota->max_job_ms : TenantQuota::kDefaultMaxJobMs) + " in " +
              options_.tenants_file + ") and was stopped"};
}

Status BrokerService::ran_past_deadline(const Job& job, const std::string& worker) const {
  const auto timeout = std::chrono::duration_cast<std::chrono::milliseconds>(job.deadline - job.received).count();
  return {StatusCode::kDeadlineExceeded,
          "the job ran on worker " + worker + " past its deadline of " + std::to_string(timeout) +
              " ms and was stopped (with prefetch, it may have waited there for a slot first; raise timeout_ms)"};
}

void BrokerService::answer_overdue(Clock::time_point now) {
  for (const std::uint64_t key : jobs_.overdue(now)) {
    Job* job = jobs_.find(key);
    if (job == nullptr) continue;  // ended by an earlier one's ending
    const bool deadline = now >= job->deadline;
    const std::string timeout =
        std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(job->deadline - job->received).count());
    switch (job->state) {
      case JobState::kAdmitting:
        if (!deadline) {
          fail(*job,
               {StatusCode::kUnavailable, "the quota store did not answer within " +
                                              std::to_string(options_.admission_timeout_ms) + " ms; retry later"},
               options_.retry_after_ms);
          continue;
        }
        fail(*job, {StatusCode::kDeadlineExceeded,
                    "the quota store did not decide before the job's deadline (" + timeout + " ms)"});
        continue;
      case JobState::kWaitingTurn:
        fail(*job, {StatusCode::kDeadlineExceeded,
                    "the actor's earlier calls did not finish before this call's deadline (" + timeout + " ms)"});
        continue;
      case JobState::kLoadingActor:
        fail(*job, {StatusCode::kDeadlineExceeded,
                    job->claim_tries > 0 && !job->holds_actor_claim
                        ? "another broker's call held the actor until this call's deadline (" + timeout + " ms)"
                        : "the actor's state did not load from Redis before the call's deadline (" + timeout + " ms)"});
        continue;
      case JobState::kQueued: {
        const bool capable = workers_.could_run(job->kernels, job->placement);
        fail(*job,
             {StatusCode::kDeadlineExceeded,
              capable ? "no worker slot became free before the job's deadline of " + timeout +
                            " ms (fleet busy; raise timeout_ms or add workers)"
                      : "no worker able to run '" + comma_joined(job->kernels) + "' joined before the job's deadline"});
        continue;
      }
      case JobState::kRunning: {
        if (deadline) {
          fail(*job, ran_past_deadline(*job, job->worker));
          continue;
        }
        fail(*job, over_max_job_ms(*job, job->worker));
        continue;
      }
      case JobState::kWritingThrough:
        fail(*job, {StatusCode::kDeadlineExceeded,
                    "the call ran, but its deadline passed while its new state was being "
                    "saved to Redis; the state may have changed (check actor_version)"});
        continue;
      case JobState::kCancelling:  // answered; its worker did not stop it within cancel_grace_ms
        if (!job->worker.empty())
          lose_worker(job->worker, "it did not stop job " + std::to_string(job->client_job_id) + " of tenant " +
                                       job->tenant + " within cancel_grace_ms (" +
                                       std::to_string(options_.cancel_grace_ms) + " ms)");
        continue;
    }
  }
}

}  // namespace bridge::broker
