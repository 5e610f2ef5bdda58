#include "bridge/client.hpp"

#include <array>
#include <atomic>
#include <deque>
#include <map>
#include <mutex>
#include <thread>
#include <unordered_map>

#include <zmq_addon.hpp>

#include "bridge/core/actor_versions.hpp"
#include "bridge/core/batch.hpp"
#include "bridge/core/broker_watch.hpp"
#include "bridge/core/client_outbox.hpp"
#include "bridge/core/curve.hpp"
#include "bridge/core/endpoint.hpp"
#include "bridge/core/handshake_monitor.hpp"
#include "bridge/core/job_codec.hpp"
#include "bridge/core/pending_requests.hpp"
#include "bridge/core/protocol.hpp"
#include "bridge/core/protocol_replies.hpp"
#include "bridge/core/request_batches.hpp"

namespace bridge {
namespace {

using Clock = std::chrono::steady_clock;
namespace proto = core::protocol;

// The broker answers DEADLINE_EXCEEDED at the deadline; the client waits this much longer before
// answering it itself, so that a silent broker cannot leave a job pending forever.
constexpr auto kClientGrace = std::chrono::milliseconds(1000);
// Bound on messages queued towards the broker; past it a submit is answered UNAVAILABLE at once.
constexpr int kSendHighWaterMark = 100000;
constexpr int kMaxReceivesPerWakeup = 1024;

// 128 random bits. The routing id is sent only inside the (CURVE-encrypted) handshake and never
// shown to other tenants: a socket that claimed it after this client left could receive what the
// broker still sends to it, so it must not be guessable (docs/security.md, "Routing ids").
std::string random_identity() { return "client-" + core::random_hex(128); }

}  // namespace

class Client::Impl {
 public:
  explicit Impl(Options options)
      : options_(std::move(options)),
        context_(1),
        socket_(context_, zmq::socket_type::dealer),
        // Clients start at a random broker of the list, so that they spread across the brokers.
        watch_(core::parse_broker_list(options_.broker), options_.broker_check, std::random_device{}(), Clock::now()),
        pending_({.max_attempts = options_.retry.max_attempts,
                  .initial_backoff = options_.retry.initial_backoff,
                  .max_backoff = options_.retry.max_backoff,
                  .resend_after_restart = options_.broker_check.count() > 0,
                  .broker = watch_.current()},
                 [this](core::Frames& frames) { return send_to_broker(frames); }) {
    // A stable identity per Client lets the broker pair job ids with this client (dedup, docs/protocol.md).
    socket_.set(zmq::sockopt::routing_id, random_identity());
    socket_.set(zmq::sockopt::linger, 0);
    socket_.set(zmq::sockopt::sndhwm, kSendHighWaterMark);
    socket_.set(zmq::sockopt::rcvhwm, kSendHighWaterMark);
    const core::CurveClientKeys keys = core::read_client_keys(options_.key_file, options_.broker_key_file, true);
    curve_ = keys.enabled();
    core::apply_curve_client(socket_, keys);
    // Handshake outcomes: a refused key or a security mismatch is answered at once, with what to
    // fix, instead of each request waiting for its timeout; a reconnect pings, so that the broker
    // sends this client's pending results again (docs/security.md, "Routing ids").
    handshakes_ = std::make_unique<core::HandshakeMonitor>(context_, socket_);
    core::connect_checking_all(socket_, watch_.current(), watch_.brokers());  // ConfigError if malformed
    broker_ = watch_.current();
    io_thread_ = std::thread([this] {
      loop();
      if (orphaned_) {  // the Client went in one of its own callbacks: this thread frees what is left
        io_thread_.detach();
        delete this;
      }
    });
    outbox_.set_taker(io_thread_.get_id());
  }

  ~Impl() {
    if (io_thread_.joinable()) close();
  }

  bool on_io_thread() const { return std::this_thread::get_id() == io_thread_.get_id(); }

  /// The Client is being destroyed in one of its own callbacks: the loop stops once the callback
  /// returns, answers what is pending as close() does, and then this thread deletes the Impl.
  void orphan() {
    orphaned_ = true;
    stopping_.store(true);
  }

  void close() {
    if (std::this_thread::get_id() == io_thread_.get_id()) {
      stopping_.store(true);  // from a callback: the loop ends after it, and the destructor joins
      return;
    }
    std::call_once(closed_, [this] {
      stopping_.store(true);
      outbox_.notifier().notify();
      io_thread_.join();
    });
  }

  const Options& options() const { return options_; }
  std::uint64_t resent_after_restart() const { return resent_after_restart_.load(); }
  std::uint64_t broker_moves() const { return broker_moves_.load(); }
  std::string broker() const {
    std::lock_guard lock(broker_mutex_);
    return broker_;
  }

  std::uint64_t submit(JobRequest request, Callback done) {
    const std::uint64_t id = next_id_.fetch_add(1);
    core::PendingRequest out;
    out.id = id;
    out.started = Clock::now();
    const auto timeout = request.timeout.count() > 0 ? request.timeout : options_.timeout;
    out.job_deadline = out.started + timeout;
    out.deadline = out.job_deadline + kClientGrace;
    out.on_result = std::move(done);
    // The broker compares this with what Redis holds: less means Redis lost acknowledged state.
    const std::uint64_t actor_seen =
        request.actor_id.empty()
            ? 0
            : versions_seen_.track((request.tenant.empty() ? options_.tenant : request.tenant) + "/" + request.actor_id,
                                   out.on_result);
    try {
      out.frames = core::encode_request(request, id, options_.tenant, options_.timeout, actor_seen,
                                        options_.inline_bytes, options_.batches);
    } catch (const std::exception& e) {
      core::PendingRequests::answer(
          out, Status(StatusCode::kInvalidArgument, std::string("cannot encode request: ") + e.what()));
      return id;
    }
    enqueue(std::move(out));
    return id;
  }

  void cancel(std::uint64_t job_id) { outbox_.cancel(job_id); }

  void hold_sends(std::thread::id holder) { outbox_.hold(holder); }
  void release_sends(std::thread::id holder) { outbox_.release(holder); }
  void send_held() { outbox_.wake(); }

  Status status(FleetStatus& out) {
    const std::uint64_t id = next_id_.fetch_add(1);
    return control<proto::StatusReply>(proto::encode(proto::StatusRequest{id}), id, [&](proto::StatusReply& r) {
      out = std::move(r.fleet);
      return Status{};
    });
  }

  Status quotas(const std::string& tenant, QuotaReport& out) {
    const std::uint64_t id = next_id_.fetch_add(1);
    return control<proto::QuotaReply>(proto::encode(proto::QuotaRequest{id, tenant}), id, [&](proto::QuotaReply& r) {
      if (r.error.is_ok()) out = std::move(r.report);
      return r.error;
    });
  }

  Status actor_request(const std::string& tenant, const std::string& actor_id, bool reset, ActorInfo& out) {
    const std::uint64_t id = next_id_.fetch_add(1);
    const std::string& t = tenant.empty() ? options_.tenant : tenant;
    auto request = proto::encode(proto::ActorRequest{id, t, actor_id, reset});
    return control<proto::ActorReply>(std::move(request), id, [&](proto::ActorReply& r) {
      if (!r.status.is_ok()) return r.status;
      out = std::move(r.actor);
      if (out.tenant.empty()) out.tenant = t;  // a broker before the field
      out.actor_id = actor_id;
      versions_seen_.note(t + "/" + actor_id, out.version);
      return Status{};
    });
  }

 private:
  // Sends a control request and blocks for its reply, which is decoded as a `Reply` and given to
  // `use` on the I/O thread while this thread waits (so it may write to the caller's variables).
  template <class Reply, class Use>
  Status control(zmq::message_t header, std::uint64_t id, const Use& use) {
    auto promise = std::make_shared<std::promise<Status>>();
    auto future = promise->get_future();
    core::PendingRequest request;
    request.id = id;
    request.started = Clock::now();
    request.job_deadline = request.deadline = request.started + options_.timeout;
    request.on_control = [promise, &use](Status s, const wire::Envelope* envelope) {
      Reply reply;
      if (s.is_ok() && envelope != nullptr && (s = proto::decode(*envelope, reply)).is_ok()) s = use(reply);
      promise->set_value(std::move(s));
    };
    request.frames.push_back(std::move(header));
    enqueue(std::move(request));
    send_held();  // it waits: under a BatchedSends of this thread it would wait forever
    return future.get();
  }

  void enqueue(core::PendingRequest out) {
    // Refused once the I/O thread has closed the outbox on its way out.
    if (!outbox_.push(out))
      core::PendingRequests::answer(out, Status(StatusCode::kCancelled, "client is shutting down"));
  }

  void loop() {
    // The order of work on each wake-up: handshake outcomes (a refused key fails what is queued),
    // then new requests and cancels, then answers, then timers and the broker check.
    core::PollSet events;
    events.on_readable_seldom([this] { return handshakes_->handle(); }, [this] { on_handshake_events(); });
    events.on_notified(outbox_.notifier(), [this] {
      send_outbox();
      send_cancels();
    });
    events.on_readable(socket_, [this] { receive(); });
    events.every_wakeup([this] {
      if (outbox_.self_queued()) send_outbox();  // jobs the callbacks just run submitted, together
      pending_.on_timers(Clock::now());
      check_broker(Clock::now());
      if (options_.after_callbacks) options_.after_callbacks();
    });
    while (!stopping_.load()) events.wait(next_wait());
    // Shutdown: everything still pending is answered CANCELLED, exactly once.
    for (auto& entry : outbox_.close())
      core::PendingRequests::answer(entry, Status(StatusCode::kCancelled, "client is shutting down"));
    // The broker stops what was sent (nobody will read its results), as for cancel(); libzmq gets a
    // moment to send these before the socket closes.
    for (const std::uint64_t id : pending_.job_ids()) {
      std::array<zmq::message_t, 1> cancel{proto::encode(proto::CancelRequest{id})};
      if (!zmq::send_multipart(socket_, cancel, zmq::send_flags::dontwait)) break;
    }
    socket_.set(zmq::sockopt::linger, 500);
    pending_.fail_all(Status(StatusCode::kCancelled, "client is shutting down"));
    if (options_.after_callbacks) options_.after_callbacks();
  }

  void send_outbox() {
    // To a broker that reads Batches, the job requests of one pass go together (send_to_broker()).
    gathered_requests_.begin(options_.batches && broker_reads_batches_);
    for (auto& entry : outbox_.take()) pending_.start(std::move(entry));
    for (const std::uint64_t id : gathered_requests_.flush(socket_)) pending_.unsent(id, queue_full());
  }

  // Answers each cancelled job CANCELLED now, once, and tells the broker to stop it (which frees the
  // worker slot); whatever the broker sends for it later is dropped like any late answer.
  void send_cancels() {
    for (const std::uint64_t id : outbox_.take_cancels()) {
      if (!pending_.cancel(id)) continue;  // answered already
      std::array<zmq::message_t, 1> cancel{proto::encode(proto::CancelRequest{id})};
      try {  // best effort: the deadline stops it anyway
        (void)zmq::send_multipart(socket_, cancel, zmq::send_flags::dontwait);
      } catch (const zmq::error_t&) {
      }
    }
  }

  // How PendingRequests sends: an error status is the answer the request gets instead.
  Status send_to_broker(core::Frames& frames) {
    if (!handshake_failure_.empty()) return Status(StatusCode::kUnauthenticated, handshake_failure_);
    if (gathered_requests_.offer(frames)) return Status{};
    try {
      if (zmq::send_multipart(socket_, frames, zmq::send_flags::dontwait)) return Status{};
    } catch (const zmq::error_t& e) {
      return Status(StatusCode::kUnavailable, std::string("send to broker failed: ") + e.what());
    }
    return queue_full();
  }

  Status queue_full() const {
    return {StatusCode::kUnavailable,
            "too many requests queued towards broker " + watch_.current() + " (is it running and reachable?)"};
  }

  void receive() {
    core::receive_batch(socket_, kMaxReceivesPerWakeup, [this](core::Frames& frames) {
      handle(frames);
      return true;
    });
  }

  // Until the next request timer, at most 100 ms (stopping_ is checked then), and at most the broker check.
  std::chrono::milliseconds next_wait() const {
    if (outbox_.self_queued()) return std::chrono::milliseconds(0);  // queued by a timer's callback
    auto wait = std::chrono::milliseconds(100);
    if (auto next = pending_.next_timer()) {
      auto until = std::chrono::duration_cast<std::chrono::milliseconds>(*next - Clock::now());
      wait = std::clamp(until + std::chrono::milliseconds(1), std::chrono::milliseconds(0), wait);
    }
    if (options_.broker_check.count() > 0) wait = std::min(wait, options_.broker_check);
    return wait;
  }

  void on_handshake_events() {
    handshakes_->drain(
        curve_, "tenants.yaml (keys: under your tenant)",
        [this] {
          if (connected_once_ && !pending_.empty()) watch_.ping_soon();
          connected_once_ = true;
          broker_reads_batches_ = false;  // until this connection's broker says it does (its Pong)
          handshake_failure_.clear();
        },
        [this](const std::string& why) {
          // libzmq does not reconnect after a refused handshake: every later request is answered so too.
          handshake_failure_ = why;
          pending_.fail_all(Status(StatusCode::kUnauthenticated, why));
        });
  }

  // Pings a broker that has been silent while jobs wait (and once at start, to learn who it is);
  // leaves one silent for two checks for the next broker of the list.
  void check_broker(Clock::time_point now) {
    switch (watch_.due(now, !pending_.empty())) {
      case core::BrokerWatch::Action::kNone: return;
      case core::BrokerWatch::Action::kMove: {
        socket_.disconnect(watch_.current());  // what is queued for it goes too: the jobs go to the next one
        socket_.connect(watch_.move(now));
        pending_.moved_to(watch_.current());
        broker_reads_batches_ = false;  // until the next one's Pong says it does
        ++broker_moves_;
        std::lock_guard lock(broker_mutex_);
        broker_ = watch_.current();
        [[fallthrough]];  // the next broker is asked at once
      }
      case core::BrokerWatch::Action::kPing: {
        watch_.pinged(now);
        core::Frames frames;
        frames.push_back(proto::encode(proto::Ping{next_id_.fetch_add(1)}));
        (void)zmq::send_multipart(socket_, frames, zmq::send_flags::dontwait);  // best effort; the next check retries
      }
    }
  }

  void handle(core::Frames& frames) {
    watch_.heard(Clock::now());
    const wire::Envelope* envelope = nullptr;
    if (frames.empty() || !core::decode_envelope(frames[0], limits_, envelope).is_ok()) return;  // not ours to answer
    core::each_message(frames, 0, *envelope, limits_,
                       [this](const wire::Envelope& message, core::Frames& one) { handle(&message, one); });
  }

  // One message (alone, or one of a Batch): `envelope` is frames[0]'s.
  void handle(const wire::Envelope* envelope, core::Frames& frames) {
    if (proto::Pong pong; envelope->body_type() == wire::Body::Pong && proto::decode(*envelope, pong).is_ok()) {
      // A changed incarnation means the broker restarted and lost every job sent to the old one.
      watch_.known(Clock::now());
      broker_reads_batches_ = envelope->batches();
      resent_after_restart_ += pending_.on_broker_incarnation(pong.incarnation);
      return;
    }
    pending_.on_answer(*envelope, std::span(frames).subspan(1), limits_);
  }

  Options options_;
  core::Limits limits_;
  zmq::context_t context_;
  zmq::socket_t socket_;     // owned by io_thread_ after construction
  core::BrokerWatch watch_;  // io_thread_'s after construction
  std::atomic<bool> stopping_{false};
  std::atomic<std::uint64_t> next_id_{1};
  core::ActorVersions versions_seen_;
  core::ClientOutbox outbox_;  // the callers' threads to io_thread_

  // Owned by io_thread_.
  core::PendingRequests pending_;
  core::RequestBatches gathered_requests_;              ///< send_outbox()'s, sent at its end
  bool broker_reads_batches_ = false;                   ///< its Pong set Envelope.batches
  std::unique_ptr<core::HandshakeMonitor> handshakes_;  // of socket_
  bool curve_ = false;
  bool connected_once_ = false;
  std::string handshake_failure_;  ///< why the broker refused the handshake; requests fail with it
  std::atomic<std::uint64_t> resent_after_restart_{0};
  std::atomic<std::uint64_t> broker_moves_{0};
  mutable std::mutex broker_mutex_;
  std::string broker_;  // watch_.current(), for other threads (broker_mutex_)

  std::thread io_thread_;
  std::once_flag closed_;
  bool orphaned_ = false;  // io_thread_'s own
};

Client::Client(Options options) : impl_(std::make_unique<Impl>(std::move(options))) {}
Client::~Client() {
  // Joining the I/O thread from itself would end the process; it finishes and frees the rest instead.
  if (impl_ && impl_->on_io_thread()) impl_.release()->orphan();
}

std::future<JobResult> Client::submit(JobRequest request) {
  auto promise = std::make_shared<std::promise<JobResult>>();
  auto future = promise->get_future();
  impl_->submit(std::move(request), [promise](JobResult result) { promise->set_value(std::move(result)); });
  return future;
}

std::uint64_t Client::submit(JobRequest request, Callback done) {
  return impl_->submit(std::move(request), std::move(done));
}

void Client::cancel(std::uint64_t job_id) { impl_->cancel(job_id); }

void Client::close() { impl_->close(); }

JobResult Client::run(JobRequest request) {
  auto result = submit(std::move(request));
  impl_->send_held();  // it waits: under a BatchedSends of this thread it would wait forever
  return result.get();
}

Status Client::status(FleetStatus& out) { return impl_->status(out); }

Status Client::quotas(const std::string& tenant, QuotaReport& out) { return impl_->quotas(tenant, out); }

Status Client::actor_info(const std::string& tenant, const std::string& actor_id, ActorInfo& out) {
  return impl_->actor_request(tenant, actor_id, /*reset=*/false, out);
}

Status Client::actor_reset(const std::string& tenant, const std::string& actor_id, ActorInfo& out) {
  return impl_->actor_request(tenant, actor_id, /*reset=*/true, out);
}

std::vector<std::future<JobResult>> Client::submit_batch(const std::string& kernel,
                                                         std::vector<std::vector<Tensor>> inputs,
                                                         const std::map<std::string, double>& params) {
  std::vector<std::future<JobResult>> results;
  results.reserve(inputs.size());
  BatchedSends together(*this);
  for (auto& item : inputs)
    results.push_back(submit(JobRequest{.kernel = kernel, .inputs = std::move(item), .params = params}));
  return results;
}

const Client::Options& Client::options() const { return impl_->options(); }

std::uint64_t Client::resent_after_restart() const { return impl_->resent_after_restart(); }

std::uint64_t Client::broker_moves() const { return impl_->broker_moves(); }

std::string Client::broker() const { return impl_->broker(); }

Client::BatchedSends::BatchedSends(Client& client) : client_(client), holder_(std::this_thread::get_id()) {
  client_.impl_->hold_sends(holder_);
}

Client::BatchedSends::~BatchedSends() { client_.impl_->release_sends(holder_); }

void Client::BatchedSends::send_now() { client_.impl_->send_held(); }

}  // namespace bridge
