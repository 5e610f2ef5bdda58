#pragma once
/// @file The client's requests that await an answer: jobs and control requests (status, quotas,
/// actor info), with their deadlines, retries with backoff, and re-sending after a broker restart.
/// No sockets: it sends through a function it is given, so it is tested on its own
/// (tests/unit/pending_requests_test.cpp). Internal to libgpubridge.

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <unordered_map>

#include "bridge/core/wire.hpp"
#include "bridge/job.hpp"

namespace bridge::core {

/// One request awaiting its answer. Exactly one of `on_result` (a job) and `on_control` is set.
struct PendingRequest {
  using Clock = std::chrono::steady_clock;
  std::uint64_t id = 0;
  Frames frames;  ///< kept between attempts while a retry or a resend may need them
  Clock::time_point started;
  Clock::time_point job_deadline;  ///< started + timeout: no retry is sent after it
  Clock::time_point deadline;      ///< the client answers DEADLINE_EXCEEDED itself at this point
  int attempts = 0;
  std::uint64_t sent_to = 0;  ///< incarnation of the broker it was last sent to (0: unknown)
  std::function<void(JobResult)> on_result;
  /// Called with the reply's envelope (valid during the call), or with an error and nullptr.
  std::function<void(Status, const wire::Envelope*)> on_control;
};

/// Not thread-safe: owned by the client's I/O thread. Every request is answered exactly once: by
/// its result, its reply, a refusal once retries are used up, its deadline, cancel() or fail_all().
class PendingRequests {
 public:
  using Clock = PendingRequest::Clock;
  /// Sends a message towards the broker; an error status is the answer the request gets instead.
  using Send = std::function<Status(Frames&)>;

  struct Policy {
    int max_attempts = 1;  ///< sends of a job refused for a passing reason (1: no retry)
    std::chrono::milliseconds initial_backoff{20};
    std::chrono::milliseconds max_backoff{2000};
    /// Jobs keep their frames after a send (shared, not copied) so that they can go again to a
    /// broker that restarted (Client::Options::broker_check > 0).
    bool resend_after_restart = true;
    std::string broker;  ///< for messages
  };

  PendingRequests(Policy policy, Send send);

  /// Sends a new request and tracks it; a failed send answers it at once.
  void start(PendingRequest request);
  /// A job's result (decoded by the caller). A refusal for a passing reason (RESOURCE_EXHAUSTED,
  /// QUEUE_FULL, UNAVAILABLE) is sent again after its backoff while attempts and time remain;
  /// anything else answers the job. A result for an id not pending (answered already) is dropped.
  void complete_job(std::uint64_t id, JobResult result);
  /// A control request's reply, or a refusal of it (`status` not OK, `envelope` null).
  void complete_control(std::uint64_t id, Status status, const wire::Envelope* envelope);
  /// An answer from the broker: a JobResult, a pending job's (its outputs decoded from the header and
  /// `payload`: complete_job()) or the refusal of a control request the broker could not read (ids
  /// are unique across jobs and control requests, so the refusal names it); or a control request's
  /// reply (StatusReply, QuotaReply, ActorReply). Anything else is ignored.
  void on_answer(const wire::Envelope& envelope, std::span<zmq::message_t> payload, const Limits& limits);
  /// A job whose request could not be sent after all (it went in a Batch): complete_job() with `status`.
  void unsent(std::uint64_t id, Status status);
  /// Answers a pending job CANCELLED; false if `id` is not a pending job.
  bool cancel(std::uint64_t id);
  /// Answers everything pending with `status` (a refused handshake, shutdown).
  void fail_all(const Status& status);

  /// Sends the retries that are due and answers the requests past their deadline.
  void on_timers(Clock::time_point now);
  /// The earliest retry or deadline, if any: when on_timers() next has work.
  std::optional<Clock::time_point> next_timer() const;

  /// The broker answered a Ping with `incarnation`. If it differs from the one a pending job was
  /// sent to, that broker restarted and lost the job: it is sent again, with the same id. Returns
  /// how many were sent again.
  std::uint64_t on_broker_incarnation(std::uint64_t incarnation);
  /// The client left a silent broker for `broker`. Every pending job goes again, with the same id,
  /// once the new broker answers a Ping (on_broker_incarnation); a control request is answered
  /// UNAVAILABLE now (it is not sent again: ask again).
  void moved_to(const std::string& broker);

  /// Answers `request` with `status` (also one that never reached the table: the client is shutting down).
  static void answer(PendingRequest& request, Status status);

  bool contains(std::uint64_t id) const { return pending_.count(id) > 0; }
  bool is_job(std::uint64_t id) const;
  bool has_jobs() const;
  /// The ids of the pending jobs (not control requests), sent or waiting to be sent again.
  std::vector<std::uint64_t> job_ids() const;
  bool empty() const { return pending_.empty(); }
  std::size_t size() const { return pending_.size(); }

 private:
  using Timers = std::multimap<Clock::time_point, std::uint64_t>;
  /// A request and its place among the deadlines, which goes with it when it is answered: left
  /// there, every answered job's deadline stayed until it passed (rate x timeout of them: tens of
  /// MB for a busy client with the default 30 s), and each woke the loop for nothing.
  struct Entry {
    PendingRequest request;
    Timers::iterator expiry;
  };
  bool send(PendingRequest& request);
  bool schedule_retry(PendingRequest& request, const JobResult& result);
  std::optional<PendingRequest> take(std::uint64_t id);
  /// Removes `it` and its deadline; returns the request.
  PendingRequest erase(std::unordered_map<std::uint64_t, Entry>::iterator it);

  Policy policy_;
  Send send_;
  std::unordered_map<std::uint64_t, Entry> pending_;
  Timers expiry_;
  Timers resend_;  ///< jobs waiting to be sent again
  std::mt19937_64 rng_{std::random_device{}()};
  std::uint64_t broker_incarnation_ = 0;  ///< from the latest Pong; 0 = not known yet
  /// sent_to of a job sent to a broker the client has left: no incarnation matches it.
  static constexpr std::uint64_t kLeftBroker = ~std::uint64_t{0};
};

}  // namespace bridge::core
