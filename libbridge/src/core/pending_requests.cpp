#include "bridge/core/pending_requests.hpp"

#include <algorithm>
#include <utility>
#include <vector>

#include "bridge/core/job_codec.hpp"

namespace bridge::core {

PendingRequests::PendingRequests(Policy policy, Send send) : policy_(std::move(policy)), send_(std::move(send)) {}

void PendingRequests::start(PendingRequest request) {
  if (!send(request)) return;
  const auto expiry = expiry_.emplace(request.deadline, request.id);
  const std::uint64_t id = request.id;
  pending_.emplace(id, Entry{std::move(request), expiry});
}

PendingRequest PendingRequests::erase(std::unordered_map<std::uint64_t, Entry>::iterator it) {
  expiry_.erase(it->second.expiry);
  PendingRequest request = std::move(it->second.request);
  pending_.erase(it);
  return request;
}

bool PendingRequests::send(PendingRequest& request) {
  ++request.attempts;
  // A job keeps its frames (shared, not copied) while it may have to be sent again: for a retry, or
  // to a broker that restarted.
  const bool keep = request.on_result && (request.attempts < policy_.max_attempts || policy_.resend_after_restart);
  request.sent_to = broker_incarnation_;
  Frames copies;
  if (keep)
    for (auto& f : request.frames) copies.emplace_back().copy(f);
  Status sent = send_(keep ? copies : request.frames);
  if (!sent.is_ok()) {
    answer(request, std::move(sent));
    return false;
  }
  if (!keep) request.frames.clear();
  return true;
}

void PendingRequests::answer(PendingRequest& request, Status status) {
  if (request.on_result) {
    JobResult result;
    result.job_id = request.id;
    result.status = std::move(status);
    result.timings.total = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - request.started);
    request.on_result(std::move(result));
  } else if (request.on_control) {
    request.on_control(std::move(status), nullptr);
  }
}

std::optional<PendingRequest> PendingRequests::take(std::uint64_t id) {
  auto it = pending_.find(id);
  if (it == pending_.end()) return std::nullopt;
  return erase(it);
}

bool PendingRequests::schedule_retry(PendingRequest& request, const JobResult& result) {
  const StatusCode code = result.status.code();
  if (code != StatusCode::kResourceExhausted && code != StatusCode::kQueueFull && code != StatusCode::kUnavailable)
    return false;
  if (request.attempts >= policy_.max_attempts || request.frames.empty()) return false;
  // Full jitter over an exponential backoff, and never sooner than the broker advised.
  const auto cap = std::min(policy_.max_backoff, policy_.initial_backoff * (1 << std::min(request.attempts - 1, 16)));
  std::uniform_int_distribution<std::int64_t> jitter(0, std::max<std::int64_t>(0, cap.count()));
  const auto delay = std::max(result.retry_after, std::chrono::milliseconds(jitter(rng_)));
  const auto at = Clock::now() + delay;
  if (at >= request.job_deadline) return false;
  resend_.emplace(at, request.id);
  return true;
}

void PendingRequests::complete_job(std::uint64_t id, JobResult result) {
  auto it = pending_.find(id);
  if (it == pending_.end() || !it->second.request.on_result) return;  // late: answered already
  if (schedule_retry(it->second.request, result)) return;
  PendingRequest request = erase(it);
  result.timings.total = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - request.started);
  request.on_result(std::move(result));
}

void PendingRequests::on_answer(const wire::Envelope& envelope, std::span<zmq::message_t> payload,
                                const Limits& limits) {
  const auto* header = envelope.body_as_JobResult();
  if (header != nullptr && is_job(header->job_id())) {
    JobResult result;
    if (Status decoded = decode_result(*header, payload, limits, result); !decoded.is_ok())
      result.status = Status(decoded.code(), "result from the fleet is corrupt: " + decoded.message());
    return complete_job(header->job_id(), std::move(result));
  }
  if (header != nullptr) {
    // A control request the broker refused before reading it (UNAUTHENTICATED, say).
    if (header->status() != wire::StatusCode::OK)
      complete_control(header->job_id(), Status(from_wire(header->status()), std::string(view(header->message()))),
                       nullptr);
    return;
  }
  std::uint64_t request_id = 0;
  if (const auto* status = envelope.body_as_StatusReply()) request_id = status->request_id();
  if (const auto* quota = envelope.body_as_QuotaReply()) request_id = quota->request_id();
  if (const auto* actor = envelope.body_as_ActorReply()) request_id = actor->request_id();
  if (request_id != 0) complete_control(request_id, Status{}, &envelope);
}

void PendingRequests::unsent(std::uint64_t id, Status status) {
  JobResult result;
  result.status = std::move(status);
  complete_job(id, std::move(result));
}

void PendingRequests::complete_control(std::uint64_t id, Status status, const wire::Envelope* envelope) {
  auto it = pending_.find(id);
  if (it == pending_.end() || !it->second.request.on_control) return;
  PendingRequest request = erase(it);
  request.on_control(std::move(status), envelope);
}

bool PendingRequests::cancel(std::uint64_t id) {
  if (!is_job(id)) return false;
  auto request = take(id);
  answer(*request, Status(StatusCode::kCancelled, "cancelled by this client"));
  return true;
}

std::vector<std::uint64_t> PendingRequests::job_ids() const {
  std::vector<std::uint64_t> ids;
  for (const auto& [id, entry] : pending_)
    if (entry.request.on_result) ids.push_back(id);
  return ids;
}

void PendingRequests::fail_all(const Status& status) {
  std::unordered_map<std::uint64_t, Entry> all;
  all.swap(pending_);  // answers may start new requests; they are not failed with these
  expiry_.clear();
  resend_.clear();
  for (auto& [id, entry] : all) answer(entry.request, status);
}

void PendingRequests::on_timers(Clock::time_point now) {
  while (!resend_.empty() && resend_.begin()->first <= now) {
    const std::uint64_t id = resend_.begin()->second;
    resend_.erase(resend_.begin());
    auto it = pending_.find(id);
    if (it == pending_.end()) continue;
    if (!send(it->second.request)) erase(it);
  }
  while (!expiry_.empty() && expiry_.begin()->first <= now) {
    auto request = take(expiry_.begin()->second);  // removes that deadline with it
    if (!request) {
      expiry_.erase(expiry_.begin());  // cannot happen: every deadline's request is pending
      continue;
    }
    answer(*request,
           Status(StatusCode::kDeadlineExceeded,
                  "no answer from broker " + policy_.broker + " in time (is it running? is the timeout long enough?)"));
  }
}

std::optional<PendingRequests::Clock::time_point> PendingRequests::next_timer() const {
  std::optional<Clock::time_point> next;
  for (const auto* timers : {&expiry_, &resend_})
    if (!timers->empty()) next = next ? std::min(*next, timers->begin()->first) : timers->begin()->first;
  return next;
}

std::uint64_t PendingRequests::on_broker_incarnation(std::uint64_t incarnation) {
  const std::uint64_t before = std::exchange(broker_incarnation_, incarnation);
  std::uint64_t resent = 0;
  std::vector<std::uint64_t> ids;  // oldest first: the order they were submitted in
  for (const auto& [id, entry] : pending_) ids.push_back(id);
  std::sort(ids.begin(), ids.end());
  for (const std::uint64_t id : ids) {
    PendingRequest& request = pending_.at(id).request;
    if (!request.on_result || request.sent_to == incarnation) continue;
    // Jobs sent before the first Pong went to this broker (it answered the Ping they preceded).
    if (request.sent_to == 0 && before == 0) {
      request.sent_to = incarnation;
      continue;
    }
    if (request.frames.empty()) continue;  // nothing kept to send (broker_check was off when sent)
    Frames copies;
    for (auto& f : request.frames) copies.emplace_back().copy(f);
    // A duplicate reaching a broker that still has the job is ignored there, and a second result
    // for one id is dropped by complete_job(): each job is answered once.
    if (send_(copies).is_ok()) {
      request.sent_to = incarnation;
      ++resent;
    }
  }
  return resent;
}

void PendingRequests::moved_to(const std::string& broker) {
  const std::string left = std::exchange(policy_.broker, broker);
  broker_incarnation_ = 0;  // what is sent from now on goes to the new broker, whose Pong says so
  std::vector<std::uint64_t> controls;
  for (auto& [id, entry] : pending_) {
    if (entry.request.on_result) {
      entry.request.sent_to = kLeftBroker;
    } else {
      controls.push_back(id);
    }
  }
  const Status moved(StatusCode::kUnavailable, "broker " + left + " went silent and the client moved to " + broker +
                                                   " before this request was answered; ask again");
  for (const std::uint64_t id : controls)
    if (auto request = take(id)) answer(*request, moved);
}

bool PendingRequests::is_job(std::uint64_t id) const {
  auto it = pending_.find(id);
  return it != pending_.end() && it->second.request.on_result;
}

bool PendingRequests::has_jobs() const {
  return std::any_of(pending_.begin(), pending_.end(), [](const auto& e) { return bool(e.second.request.on_result); });
}

}  // namespace bridge::core
