#include "bridge/worker/worker_service.hpp"

#include <unistd.h>

#include <array>
#include <random>

#include <spdlog/spdlog.h>
#include <zmq_addon.hpp>

#include "bridge/core/job_codec.hpp"
#include "bridge/core/liveness.hpp"
#include "bridge/core/poll.hpp"

namespace bridge::worker {
namespace {

constexpr int kMaxReceivesPerWakeup = 256;

std::uint64_t random_u64() {
  std::random_device rd;
  return (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
}

std::string default_worker_id() {
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  // pid alone is not unique across containers (all pid 1), hence the random suffix.
  char suffix[8];
  std::snprintf(suffix, sizeof suffix, "%04x", static_cast<unsigned>(random_u64() & 0xffff));
  return std::string(host) + "-" + std::to_string(::getpid()) + "-" + suffix;
}

// Bytes of a declared output; false if a dimension is negative or the product overflows.
bool byte_size_of(const OutputSpec& spec, std::uint64_t& bytes) {
  bytes = dtype_size(spec.dtype);
  for (std::int64_t dim : spec.shape)
    if (dim < 0 || __builtin_mul_overflow(bytes, static_cast<std::uint64_t>(dim), &bytes)) return bytes = 0, false;
  return true;
}

// Every param must be one the kernel declares, so that a misspelt name is refused, not ignored; and
// given once, so that no value is silently dropped.
Status check_params(const KernelSpec& kernel, const Params& params) {
  for (std::size_t i = 0; i < params.size(); ++i)
    for (std::size_t j = 0; j < i; ++j)
      if (params[j].first == params[i].first)
        return {StatusCode::kInvalidArgument, kernel.name + ": param '" + params[i].first + "' is given twice"};
  for (const auto& [name, value] : params) {
    if (std::find(kernel.params.begin(), kernel.params.end(), name) != kernel.params.end()) continue;
    std::string known;
    for (const auto& p : kernel.params) known += (known.empty() ? "" : ", ") + std::string(p);
    return {StatusCode::kInvalidArgument, kernel.name + ": unknown param '" + name + "' (its params: " +
                                              (known.empty() ? std::string("none") : known) + ")"};
  }
  return {};
}

std::uint64_t micros_between(std::chrono::steady_clock::time_point a, std::chrono::steady_clock::time_point b) {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(b - a).count());
}

}  // namespace

WorkerService::WorkerService(WorkerOptions options, std::shared_ptr<Backend> backend, const KernelRegistry& kernels)
    : options_(std::move(options)),
      backend_(std::move(backend)),
      kernels_(kernels),
      id_(options_.id.empty() ? default_worker_id() : options_.id),
      incarnation_(random_u64()),
      context_(1),
      batcher_(options_.batching()) {
  options_.validate();
  curve_ = core::read_client_keys(options_.key_file, options_.broker_key_file, /*from_environment=*/false);
  completion_ = [this](std::unique_ptr<Execution> e) { on_complete(std::move(e)); };
  using metrics::Registry;
  metrics_.describe("bridge_worker_jobs_total", Registry::Type::kCounter,
                    "Jobs this worker answered, by kernel, device and status.");
  metrics_.describe("bridge_worker_compute_seconds", Registry::Type::kHistogram, "Kernel time of jobs answered OK.",
                    metrics::latency_buckets());
  metrics_.describe(
      "bridge_worker_fallbacks_total", Registry::Type::kCounter,
      "Jobs run on the CPU instead of the GPU, by kernel (fallback_reason in results and logs says why).");
  metrics_.describe("bridge_worker_batched_jobs_total", Registry::Type::kCounter, "Jobs that shared a kernel launch.");
  metrics_.describe("bridge_worker_inflight_jobs", Registry::Type::kGauge, "Jobs accepted and not yet answered.");
  metrics_.describe("bridge_worker_broker_connected", Registry::Type::kGauge,
                    "1 while the broker is heard within its liveness.");
  metrics_.describe("bridge_worker_actors", Registry::Type::kGauge, "Actor activations held.");
  metrics_.describe("bridge_worker_resident_bytes", Registry::Type::kGauge, "Bytes of the actors' resident tensors.");
  metrics_.describe("bridge_worker_gpu_disabled", Registry::Type::kGauge,
                    "1 while the circuit breaker keeps jobs off the GPU.");
  metrics_.describe("bridge_worker_pool_bytes", Registry::Type::kGauge,
                    "Device memory pool bytes, by state (in_use, cached).");
  if (!options_.metrics_listen.empty()) {
    metrics_server_ = std::make_unique<metrics::MetricsServer>(
        options_.metrics_listen, metrics_,
        [this]() -> std::string {
          return metrics_.value("bridge_worker_broker_connected", {}) >= 1 ? std::string() : "the broker is not heard";
        },
        metrics::MetricsServer::read_token_file(options_.metrics_token_file));
    if (options_.metrics_token_file.empty() && !metrics::MetricsServer::is_loopback(options_.metrics_listen))
      spdlog::warn("metrics_listen {} is reachable beyond this machine and has no metrics_token_file",
                   options_.metrics_listen);
  }
}

WorkerService::~WorkerService() { backend_->wait_idle(); }

void WorkerService::stop() noexcept { stop_.notify(); }

void WorkerService::connect() {
  socket_ = std::make_unique<zmq::socket_t>(context_, zmq::socket_type::dealer);
  socket_->set(zmq::sockopt::routing_id, id_);
  socket_->set(zmq::sockopt::linger, 1000);
  socket_->set(zmq::sockopt::maxmsgsize,
               static_cast<std::int64_t>(options_.limits.max_job_bytes + options_.limits.max_header_bytes));
  core::apply_curve_client(*socket_, curve_);
  handshakes_ = std::make_unique<core::HandshakeMonitor>(context_, *socket_);
  try {
    socket_->connect(options_.broker);
  } catch (const zmq::error_t& e) {
    throw std::runtime_error("cannot connect to the broker endpoint '" + options_.broker + "': " + e.what());
  }
  last_heard_ = Clock::now();
  send_hello();
}

void WorkerService::send(core::Frames& frames) {
  // A DEALER queues while the broker is away (up to its high-water mark); a failed send is logged
  // and the broker's liveness check recovers the job elsewhere.
  if (auto announcement = core::announce_message(core::message_bytes(frames), inflight_)) {
    // A large result holds up the heartbeats behind it until the broker has all of it.
    std::array<zmq::message_t, 1> heartbeat{std::move(*announcement)};
    zmq::send_multipart(*socket_, heartbeat, zmq::send_flags::dontwait);
  }
  if (zmq::send_multipart(*socket_, frames, zmq::send_flags::dontwait)) return;
  // After a refused handshake nothing can be sent; that was logged once (log_handshakes).
  if (!handshake_failure_.empty())
    spdlog::debug("send queue to broker {} is full (the handshake was refused); dropped a message", options_.broker);
  else
    spdlog::warn("send queue to broker {} is full; dropped a message", options_.broker);
}

void WorkerService::send_hello() {
  flatbuffers::FlatBufferBuilder fbb(1024);
  std::vector<flatbuffers::Offset<flatbuffers::String>> names;
  for (const auto& name : kernels_.names()) names.push_back(fbb.CreateString(name));
  auto hello = wire::CreateWorkerHello(fbb, fbb.CreateString(id_), incarnation_,
                                       core::add_device_info(fbb, backend_->device()), fbb.CreateVector(names),
                                       options_.slots, options_.heartbeat_ms);
  core::Frames frames;
  frames.push_back(core::finish_envelope(fbb, wire::Body::WorkerHello, hello.Union()));
  send(frames);
  next_heartbeat_ = Clock::now() + std::chrono::milliseconds(options_.heartbeat_ms);
}

void WorkerService::send_heartbeat() {
  flatbuffers::FlatBufferBuilder fbb(128);
  const DeviceMetrics device = backend_->metrics();
  const auto liveness = std::chrono::milliseconds(options_.heartbeat_ms) * options_.liveness;
  metrics_.set("bridge_worker_inflight_jobs", {}, inflight_);
  metrics_.set("bridge_worker_broker_connected", {}, Clock::now() - last_heard_ <= liveness ? 1 : 0);
  metrics_.set("bridge_worker_actors", {}, static_cast<double>(actors_.size()));
  metrics_.set("bridge_worker_resident_bytes", {}, static_cast<double>(actors_.resident_bytes()));
  metrics_.set("bridge_worker_gpu_disabled", {}, device.gpu_disabled ? 1 : 0);
  if (device.pool_bytes_in_use >= 0) {
    metrics_.set("bridge_worker_pool_bytes", {{"state", "in_use"}}, static_cast<double>(device.pool_bytes_in_use));
    metrics_.set("bridge_worker_pool_bytes", {{"state", "cached"}}, static_cast<double>(device.pool_bytes_cached));
  }
  auto heartbeat = wire::CreateHeartbeat(fbb, inflight_, core::add_device_metrics(fbb, device));
  core::Frames frames;
  frames.push_back(core::finish_envelope(fbb, wire::Body::Heartbeat, heartbeat.Union()));
  send(frames);
  next_heartbeat_ = Clock::now() + std::chrono::milliseconds(options_.heartbeat_ms);
}

void WorkerService::send_goodbye(const std::string& reason) {
  flatbuffers::FlatBufferBuilder fbb(128);
  auto goodbye = wire::CreateGoodbye(fbb, fbb.CreateString(reason));
  core::Frames frames;
  frames.push_back(core::finish_envelope(fbb, wire::Body::Goodbye, goodbye.Union()));
  send(frames);
}

void WorkerService::run() {
  connect();
  spdlog::info("worker {} on {} ({}, {} slots, kernels: {}), connecting to {}{}", id_, backend_->device().name,
               device_kind_name(backend_->device().kind), options_.slots, fmt::join(kernels_.names(), ","),
               options_.broker, curve_.enabled() ? " (CURVE)" : "");
  if (!curve_.enabled())
    spdlog::warn("worker {}: no key_file and broker_key_file: CURVE is off, so only a broker with security: none "
                 "will take this worker (docs/security.md)", id_);
  const auto heartbeat = std::chrono::milliseconds(options_.heartbeat_ms);
  bool draining = false;
  Clock::time_point drain_deadline;
  while (true) {
    zmq::pollitem_t items[] = {{socket_->handle(), 0, ZMQ_POLLIN, 0},
                               {nullptr, completed_signal_.fd(), ZMQ_POLLIN, 0},
                               {nullptr, stop_.fd(), ZMQ_POLLIN, 0},
                               {handshakes_->handle(), 0, ZMQ_POLLIN, 0}};
    const auto now = Clock::now();
    auto wake = std::min(next_heartbeat_, stop_overdue_jobs(now));
    if (auto due = batcher_.next_due()) wake = std::min(wake, *due);
    // Round up: a batch due in 300 us must not turn into a busy loop of zero-timeout polls.
    auto wait = std::chrono::ceil<std::chrono::milliseconds>(wake - now);
    core::poll(items, 4, std::clamp(wait, std::chrono::milliseconds(0), heartbeat));
    if (items[3].revents & ZMQ_POLLIN) log_handshakes();

    if (items[1].revents & ZMQ_POLLIN) {
      completed_signal_.drain();
      send_completed();
    }
    if (items[0].revents & ZMQ_POLLIN) receive();
    // After a read of the socket: jobs that arrived together form their batches now.
    launch_batches(batcher_.take_due(draining ? Clock::time_point::max() : Clock::now()));
    if ((items[2].revents & ZMQ_POLLIN) && !draining) {
      stop_.drain();
      draining = true;
      drain_deadline = Clock::now() + std::chrono::milliseconds(options_.drain_timeout_ms);
      // Goodbye first: the broker stops dispatching here but still takes the results of jobs in flight.
      send_goodbye("shutting down");
      spdlog::info("worker {} stopping: draining {} job(s) in flight", id_, inflight_);
    }
    if (draining && (inflight_ == 0 || Clock::now() >= drain_deadline)) break;

    if (Clock::now() >= next_heartbeat_) send_heartbeat();
    if (!draining && Clock::now() - last_heard_ > heartbeat * options_.liveness + broker_grace_) {
      spdlog::warn("broker {} silent for {} ms; reconnecting", options_.broker,
                   std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - last_heard_).count());
      connect();
    }
  }
  if (inflight_ > 0)
    spdlog::warn("worker {} stopped with {} job(s) unfinished after {} ms; the broker re-dispatches them", id_,
                 inflight_, options_.drain_timeout_ms);
  spdlog::info("worker {} stopped", id_);
}

void WorkerService::log_handshakes() {
  handshakes_->drain(
      curve_.enabled(), "workers_file",
      [this] {
        if (!handshake_failure_.empty()) spdlog::info("worker {}: the broker accepted the handshake again", id_);
        handshake_failure_.clear();
      },
      [this](const std::string& why) {
        if (why != handshake_failure_) spdlog::error("worker {}: cannot register: {}", id_, why);
        handshake_failure_ = why;
      });
}

void WorkerService::receive() {
  for (int i = 0; i < kMaxReceivesPerWakeup; ++i) {
    core::Frames frames;
    if (!zmq::recv_multipart(*socket_, std::back_inserter(frames), zmq::recv_flags::dontwait)) return;
    last_heard_ = Clock::now();
    broker_grace_ = std::chrono::milliseconds(0);
    const wire::Envelope* envelope = nullptr;
    const Status decoded = frames.empty() ? Status(StatusCode::kMalformedMessage, "empty message")
                                          : core::decode_envelope(frames[0], options_.limits, envelope);
    if (!decoded.is_ok()) {
      spdlog::error("dropped a message from the broker: {}", decoded.to_string());
      continue;
    }
    switch (envelope->body_type()) {
      case wire::Body::Dispatch: handle_dispatch(*envelope->body_as_Dispatch(), frames); break;
      case wire::Body::Heartbeat:  // liveness, and perhaps the size of what comes next
        broker_grace_ =
            core::transfer_grace(envelope->body_as_Heartbeat()->incoming_bytes(), options_.link_floor_mib_s);
        break;
      case wire::Body::Cancel: {
        const auto* cancel = envelope->body_as_Cancel();
        const StatusCode reason = core::from_wire(cancel->reason());
        stop_job(cancel->dispatch_id(), reason == StatusCode::kDeadlineExceeded ? reason : StatusCode::kCancelled,
                 reason == StatusCode::kDeadlineExceeded ? "the job's deadline passed while it ran on worker " + id_
                                                         : "the job was cancelled while it ran on worker " + id_);
        break;
      }
      case wire::Body::Deactivate: {
        const std::string actor(core::view(envelope->body_as_Deactivate()->actor()));
        actors_.deactivate(actor);
        spdlog::debug("actor {} deactivated ({} activations left)", actor, actors_.size());
        break;
      }
      case wire::Body::Goodbye:
        // The broker is going away. A fresh connection says hello as soon as a broker binds the
        // endpoint again, rather than after `liveness` silent heartbeats.
        spdlog::info("broker {} is going away ({}); reconnecting", options_.broker,
                     core::view(envelope->body_as_Goodbye()->reason()));
        connect();
        return;  // the old socket is gone; nothing more to read from it
      case wire::Body::Reregister:
        spdlog::info("broker asked for a new hello ({})", core::view(envelope->body_as_Reregister()->reason()));
        send_hello();
        break;
      default:
        spdlog::warn("ignored a {} message from the broker", wire::EnumNameBody(envelope->body_type()));
    }
  }
}

void WorkerService::handle_dispatch(const wire::Dispatch& dispatch, core::Frames& frames) {
  const std::uint64_t dispatch_id = dispatch.dispatch_id();
  const std::uint32_t deadline_ms = dispatch.deadline_ms();
  const auto received = Clock::now();

  const wire::Envelope* request_envelope = nullptr;
  if (frames.size() < 2)
    return answer_error(dispatch_id, {StatusCode::kMalformedMessage, "dispatch without a request frame"});
  Status status = core::decode_envelope(frames[1], options_.limits, request_envelope);
  if (status.is_ok() && request_envelope->body_type() != wire::Body::JobRequest)
    status = {StatusCode::kMalformedMessage, "dispatch carries no JobRequest"};
  if (!status.is_ok()) return answer_error(dispatch_id, status);
  const wire::JobRequest& request = *request_envelope->body_as_JobRequest();
  // [dispatch][request][the request's tensors with data][the activation's tensors, when activating]
  std::size_t framed = 0;
  if (request.inputs())
    for (const auto* desc : *request.inputs()) framed += core::is_resident(*desc) ? 0 : 1;
  if (frames.size() < 2 + framed)
    return answer_error(dispatch_id, {StatusCode::kMalformedMessage, "dispatch has fewer frames than its tensors"});
  auto payload = std::span(frames).subspan(2, framed);
  auto activation_frames = std::span(frames).subspan(2 + framed);
  std::uint64_t total_bytes = 0;
  status = core::validate_request(request, payload, options_.limits, total_bytes);
  if (!status.is_ok()) return answer_error(dispatch_id, status);

  auto execution = std::make_unique<Execution>();
  execution->dispatch_id = dispatch_id;
  execution->job_id = request.job_id();
  execution->tenant = std::string(core::view(request.tenant()));
  if (deadline_ms > 0) execution->deadline = received + std::chrono::milliseconds(deadline_ms);
  auto find_kernel = [&](const flatbuffers::String* name) -> const KernelSpec* {
    const KernelSpec* kernel = kernels_.find(core::view(name));
    if (kernel == nullptr)
      status = {StatusCode::kUnknownKernel, "worker " + id_ + " has no kernel '" + std::string(core::view(name)) + "'"};
    return kernel;
  };
  auto read_params = [](const flatbuffers::Vector<flatbuffers::Offset<wire::Param>>* list, Params& out) {
    if (list)
      for (const auto* p : *list) out.emplace_back(std::string(core::view(p->name())), p->value());
  };
  if ((execution->kernel = find_kernel(request.kernel())) == nullptr) return answer_error(dispatch_id, status);
  read_params(request.params(), execution->params);
  if (request.stages())
    for (const auto* stage : *request.stages()) {
      Step& step = execution->then.emplace_back();
      if ((step.kernel = find_kernel(stage->kernel())) == nullptr) return answer_error(dispatch_id, status);
      read_params(stage->params(), step.params);
    }

  Activation* activation = nullptr;
  if (dispatch.actor() != nullptr && dispatch.actor()->size() > 0) {
    activation = bind_actor(dispatch, activation_frames, *execution, status);
    if (activation == nullptr) return answer_error(dispatch_id, status);
    if (request.keep_outputs())
      for (const auto* name : *request.keep_outputs()) execution->keep_outputs.emplace_back(core::view(name));
  } else if (!activation_frames.empty()) {
    return answer_error(dispatch_id, {StatusCode::kMalformedMessage, "dispatch has more frames than its tensors"});
  }
  std::size_t frame = 0;
  for (flatbuffers::uoffset_t i = 0; request.inputs() != nullptr && i < request.inputs()->size(); ++i) {
    const wire::TensorDesc* desc = request.inputs()->Get(i);
    if (!core::is_resident(*desc)) {
      execution->inputs.push_back(core::tensor_from_frame(*desc, std::move(payload[frame++])));
      if (!execution->resident_copies.empty()) execution->resident_copies.push_back(nullptr);
      continue;
    }
    const std::string name(core::view(desc->resident()));
    auto it = activation == nullptr ? decltype(activation->tensors)::iterator{} : activation->tensors.find(name);
    if (activation == nullptr || it == activation->tensors.end())
      return answer_error(dispatch_id, {StatusCode::kInvalidArgument,
                                        "actor " + execution->actor + " has no resident tensor '" + name +
                                            "'; put it first (Actor::put) or keep it from an earlier call"});
    execution->resident_copies.resize(execution->inputs.size());  // nulls for the sent inputs before it
    execution->resident_copies.push_back(activation->device_copy(name));
    execution->inputs.push_back(it->second);
  }

  status = plan(*execution);
  if (!status.is_ok()) return answer_error(dispatch_id, status);
  if (const std::size_t outputs = execution->step_planned(execution->step_count() - 1).size();
      execution->keep_outputs.size() > outputs)
    return answer_error(dispatch_id, {StatusCode::kInvalidArgument,
                                      "keep_outputs names " + std::to_string(execution->keep_outputs.size()) +
                                          " outputs; " + execution->step_kernel(execution->step_count() - 1).name +
                                          " gives " + std::to_string(outputs)});
  execution->transfer_us = micros_between(received, Clock::now());
  ++inflight_;
  running_[dispatch_id] = {execution->deadline, execution->cancel};
  if (!batcher_.eligible(*execution)) return launch(std::move(execution));
  if (auto full = batcher_.add(std::move(execution), Clock::now())) {
    std::vector<DynamicBatcher::Group> groups;
    groups.push_back(std::move(*full));
    launch_batches(std::move(groups));
  }
}

Activation* WorkerService::bind_actor(const wire::Dispatch& dispatch, std::span<zmq::message_t> activation_frames,
                                      Execution& execution, Status& status) {
  execution.actor = std::string(core::view(dispatch.actor()));
  execution.actor_version = dispatch.actor_version();
  if (dispatch.activate()) {
    std::uint64_t bytes = 0;
    status = core::validate_tensors(dispatch.activation(), activation_frames, options_.limits, bytes);
    if (!status.is_ok()) return nullptr;
    Activation activation;
    activation.version = dispatch.actor_version();
    for (std::size_t i = 0; i < activation_frames.size(); ++i) {
      const wire::TensorDesc& desc = *dispatch.activation()->Get(static_cast<flatbuffers::uoffset_t>(i));
      activation.keep(std::string(core::view(desc.name())),
                      core::tensor_from_frame(desc, std::move(activation_frames[i])));
    }
    actors_.activate(execution.actor, std::move(activation));
    spdlog::debug("actor {} activated at version {} ({} tensors)", execution.actor, dispatch.actor_version(),
                  activation_frames.size());
  } else if (!activation_frames.empty()) {
    status = {StatusCode::kMalformedMessage, "dispatch has more frames than its tensors"};
    return nullptr;
  }
  Activation* activation = actors_.find(execution.actor);
  if (activation == nullptr || activation->version != execution.actor_version) {
    // The broker's view is ahead of this worker's (it restarted, or a write-through failed): the
    // broker reactivates the actor from Redis and sends the call again.
    status = {StatusCode::kActorNotActive,
              "actor " + execution.actor +
                  (activation == nullptr ? " is not active on worker " + id_
                                         : " is at version " + std::to_string(activation->version) + " on worker " +
                                               id_ + ", not " + std::to_string(execution.actor_version))};
    return nullptr;
  }
  return activation;
}

Status WorkerService::plan(Execution& execution) {
  const std::size_t steps = execution.step_count();
  std::uint64_t total_bytes = 0;  // every step's outputs: what the job will allocate
  for (std::size_t i = 0; i < steps; ++i) {
    const KernelSpec& kernel = execution.step_kernel(i);
    auto where = [&](const std::string& what) {
      return steps == 1 ? what
                        : "pipeline step " + std::to_string(i + 1) + " of " + std::to_string(steps) + " (" +
                              kernel.name + "): " + what;
    };
    if (Status known = check_params(kernel, execution.step_params(i)); !known.is_ok())
      return {known.code(), where(known.message())};
    std::vector<OutputSpec>& specs = execution.step_planned(i);
    specs.clear();
    Status status = kernel.plan(KernelArgs{execution.step_inputs(i), &execution.step_params(i)}, specs);
    if (!status.is_ok()) return {status.code(), where(status.message())};
    // Sizes are known before memory is touched: each output and the job's total against the limits.
    std::vector<Tensor> descriptors;
    for (const OutputSpec& spec : specs) {
      std::uint64_t bytes = 0;
      if (!byte_size_of(spec, bytes) || bytes > options_.limits.max_tensor_bytes)
        return {StatusCode::kTooLarge,
                where("output '" + spec.name + "' would be " +
                      (bytes == 0 ? std::string("too large to count") : std::to_string(bytes) + " bytes") +
                      ", over the worker's max_tensor_bytes of " + std::to_string(options_.limits.max_tensor_bytes))};
      total_bytes += bytes;
      if (total_bytes > options_.limits.max_job_bytes)
        return {StatusCode::kTooLarge, where("the job's outputs would take " + std::to_string(total_bytes) +
                                             " bytes (all steps together), over the worker's max_job_bytes of " +
                                             std::to_string(options_.limits.max_job_bytes))};
      // The next step plans on what this one declares; no bytes exist yet (prepare_execution()).
      descriptors.push_back(Tensor::adopt(spec.dtype, spec.shape, spec.name, nullptr, nullptr, 0));
    }
    (i == 0 ? execution.outputs : execution.then[i - 1].outputs) = std::move(descriptors);
  }
  // prepare_execution() allocates what was declared; the descriptors only served planning.
  for (std::size_t i = 0; i < steps; ++i) (i == 0 ? execution.outputs : execution.then[i - 1].outputs).clear();
  return {};
}

void WorkerService::launch(std::unique_ptr<Execution> execution) {
  backend_->execute(std::move(execution), completion_);
}

void WorkerService::launch_batches(std::vector<DynamicBatcher::Group> groups) {
  for (auto& group : groups) {
    const auto start = Clock::now();
    std::unique_ptr<Execution> combined = stack_batch(std::move(group));
    if (combined->batch_size > 1) combined->transfer_us = micros_between(start, Clock::now());
    launch(std::move(combined));
  }
}

void WorkerService::stop_job(std::uint64_t dispatch_id, StatusCode code, const std::string& message) {
  auto it = running_.find(dispatch_id);
  if (it == running_.end()) return;  // answered already: the result is on its way
  if (!it->second.cancel->requested())
    spdlog::info("stopping job dispatch {}: {}", dispatch_id, message);
  it->second.cancel->request(code, message);
}

WorkerService::Clock::time_point WorkerService::stop_overdue_jobs(Clock::time_point now) {
  // The broker also sends Cancel at the deadline; stopping here too keeps the slot's time bounded
  // when that message is late or lost.
  auto next = Clock::time_point::max();
  for (auto& [dispatch_id, job] : running_) {
    if (job.cancel->requested()) continue;
    if (job.deadline <= now) {
      job.cancel->request(StatusCode::kDeadlineExceeded, "the job's deadline passed while it ran on worker " + id_);
    } else {
      next = std::min(next, job.deadline);
    }
  }
  return next;
}

void WorkerService::answer_error(std::uint64_t dispatch_id, const Status& status) {
  spdlog::warn("job dispatch {} refused: {}", dispatch_id, status.to_string());
  auto execution = std::make_unique<Execution>();
  execution->dispatch_id = dispatch_id;
  execution->status = status;
  core::Frames frames;
  frames.push_back(result_header(*execution, {}, {}));
  send(frames);
}

void WorkerService::on_complete(std::unique_ptr<Execution> execution) {
  execution->release_working_memory();  // here, on the backend's thread
  {
    std::lock_guard lock(completed_mutex_);
    completed_.push_back(std::move(execution));
  }
  completed_signal_.notify();
}

void WorkerService::send_completed() {
  std::vector<std::unique_ptr<Execution>> finished;
  {
    std::lock_guard lock(completed_mutex_);
    finished.swap(completed_);
  }
  for (auto& execution : finished)
    for (auto& member : unstack_batch(std::move(execution))) {
      --inflight_;
      running_.erase(member->dispatch_id);
      send_result(*member);
    }
}

void WorkerService::send_result(Execution& execution) {
  std::vector<Tensor> returned, kept;
  if (execution.status.is_ok()) {
    std::vector<Tensor>& result = execution.result();
    for (std::size_t i = 0; i < result.size(); ++i) {
      const bool keep = i < execution.keep_outputs.size() && !execution.keep_outputs[i].empty();
      if (!keep) {
        returned.push_back(result[i]);
        continue;
      }
      result[i].set_name(execution.keep_outputs[i]);
      kept.push_back(result[i]);
    }
    if (!execution.actor.empty() && !kept.empty()) {
      // The activation moves on with the call; the broker writes the kept tensors through to Redis
      // (and deactivates this copy if that fails, so that it is never used ahead of Redis).
      ++execution.actor_version;
      if (Activation* activation = actors_.find(execution.actor)) {
        activation->version = execution.actor_version;
        for (const Tensor& t : kept) activation->keep(t.name(), t);
      }
    }
  } else if (execution.kernel != nullptr) {
    spdlog::warn("job {} of tenant {} (dispatch {}, {}) failed: {}", execution.job_id, execution.tenant,
                 execution.dispatch_id, execution.kernel->name,
                 execution.status.to_string());
  }
  if (execution.kernel != nullptr) {
    const DeviceInfo& device = execution.ran_on != nullptr ? *execution.ran_on : backend_->device();
    const std::string device_kind = device_kind_name(device.kind);
    metrics_.add("bridge_worker_jobs_total", {{"kernel", execution.kernel->name}, {"device", device_kind},
                                              {"status", status_code_name(execution.status.code())}});
    if (execution.status.is_ok())
      metrics_.observe("bridge_worker_compute_seconds", {{"kernel", execution.kernel->name}, {"device", device_kind}},
                       static_cast<double>(execution.compute_us) / 1e6);
    if (!execution.fallback_reason.empty())
      metrics_.add("bridge_worker_fallbacks_total", {{"kernel", execution.kernel->name}});
    if (execution.batch_size > 1)
      metrics_.add("bridge_worker_batched_jobs_total", {{"kernel", execution.kernel->name}});
  }
  core::Frames frames;
  frames.push_back(result_header(execution, returned, kept));
  for (const Tensor& t : returned) frames.push_back(core::tensor_to_frame(t));
  for (const Tensor& t : kept) frames.push_back(core::tensor_to_frame(t));
  send(frames);
}

zmq::message_t WorkerService::result_header(const Execution& execution, std::span<const Tensor> returned,
                                            std::span<const Tensor> kept) {
  flatbuffers::FlatBufferBuilder fbb(512);
  fbb.ForceDefaults(true);  // the broker rewrites job_id and timings in place (docs/protocol.md)
  std::vector<flatbuffers::Offset<wire::TensorDesc>> outputs, kept_descs;
  for (const Tensor& t : returned) outputs.push_back(core::add_tensor_desc(fbb, t));
  for (const Tensor& t : kept) kept_descs.push_back(core::add_tensor_desc(fbb, t));
  std::vector<flatbuffers::Offset<wire::StageTiming>> stages;
  if (execution.step_count() > 1 && execution.step_compute_us.size() == execution.step_count())
    for (std::size_t i = 0; i < execution.step_count(); ++i)
      stages.push_back(wire::CreateStageTiming(fbb, fbb.CreateString(execution.step_kernel(i).name),
                                               execution.step_compute_us[i]));
  auto message = fbb.CreateString(execution.status.message());
  auto outputs_vector = fbb.CreateVector(outputs);
  auto worker_id = fbb.CreateString(id_);
  const DeviceInfo& device = execution.ran_on != nullptr ? *execution.ran_on : backend_->device();
  auto device_name = fbb.CreateString(device.name);
  auto fallback = fbb.CreateString(execution.fallback_reason);
  auto stage_vector = stages.empty() ? 0 : fbb.CreateVector(stages);
  auto kept_vector = kept_descs.empty() ? 0 : fbb.CreateVector(kept_descs);
  const wire::Timings timings(0, execution.transfer_us, execution.compute_us);
  auto result = wire::CreateJobResult(fbb, execution.dispatch_id, core::to_wire(execution.status.code()), message,
                                      outputs_vector, worker_id, static_cast<wire::DeviceKind>(device.kind),
                                      device_name, fallback, &timings, 0, 0, stage_vector, execution.batch_size,
                                      kept_vector, execution.actor_version);
  return core::finish_envelope(fbb, wire::Body::JobResult, result.Union());
}

}  // namespace bridge::worker
