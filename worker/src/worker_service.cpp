#include "bridge/worker/worker_service.hpp"

#include <unistd.h>

#include <random>

#include <spdlog/spdlog.h>
#include <zmq_addon.hpp>

#include "bridge/core/job_codec.hpp"
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
      context_(1) {
  options_.validate();
  completion_ = [this](std::unique_ptr<Execution> e) { on_complete(std::move(e)); };
}

WorkerService::~WorkerService() { backend_->wait_idle(); }

void WorkerService::stop() noexcept { stop_.notify(); }

void WorkerService::connect() {
  socket_ = std::make_unique<zmq::socket_t>(context_, zmq::socket_type::dealer);
  socket_->set(zmq::sockopt::routing_id, id_);
  socket_->set(zmq::sockopt::linger, 1000);
  socket_->set(zmq::sockopt::maxmsgsize, static_cast<std::int64_t>(options_.limits.max_job_bytes + options_.limits.max_header_bytes));
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
  if (!zmq::send_multipart(*socket_, frames, zmq::send_flags::dontwait))
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
  auto heartbeat = wire::CreateHeartbeat(fbb, inflight_, core::add_device_metrics(fbb, backend_->metrics()));
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
  spdlog::info("worker {} serving on {} ({}, {} slots, kernels: {}) via {}", id_, backend_->device().name,
               device_kind_name(backend_->device().kind), options_.slots, fmt::join(kernels_.names(), ","),
               options_.broker);
  const auto heartbeat = std::chrono::milliseconds(options_.heartbeat_ms);
  bool draining = false;
  Clock::time_point drain_deadline;
  while (true) {
    zmq::pollitem_t items[] = {{socket_->handle(), 0, ZMQ_POLLIN, 0},
                               {nullptr, completed_signal_.fd(), ZMQ_POLLIN, 0},
                               {nullptr, stop_.fd(), ZMQ_POLLIN, 0}};
    const auto now = Clock::now();
    auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(next_heartbeat_ - now);
    core::poll(items, 3, std::clamp(wait, std::chrono::milliseconds(0), heartbeat));

    if (items[1].revents & ZMQ_POLLIN) {
      completed_signal_.drain();
      send_completed();
    }
    if (items[0].revents & ZMQ_POLLIN) receive();
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
    if (!draining && Clock::now() - last_heard_ > heartbeat * options_.liveness) {
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

void WorkerService::receive() {
  for (int i = 0; i < kMaxReceivesPerWakeup; ++i) {
    core::Frames frames;
    if (!zmq::recv_multipart(*socket_, std::back_inserter(frames), zmq::recv_flags::dontwait)) return;
    last_heard_ = Clock::now();
    const wire::Envelope* envelope = nullptr;
    const Status decoded = frames.empty() ? Status(StatusCode::kMalformedMessage, "empty message")
                                          : core::decode_envelope(frames[0], options_.limits, envelope);
    if (!decoded.is_ok()) {
      spdlog::error("dropped a message from the broker: {}", decoded.to_string());
      continue;
    }
    switch (envelope->body_type()) {
      case wire::Body::Dispatch: handle_dispatch(*envelope->body_as_Dispatch(), frames); break;
      case wire::Body::Heartbeat: break;  // liveness only
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
  if (frames.size() < 2) return answer_error(dispatch_id, {StatusCode::kMalformedMessage, "dispatch without a request frame"});
  Status status = core::decode_envelope(frames[1], options_.limits, request_envelope);
  if (status.is_ok() && request_envelope->body_type() != wire::Body::JobRequest)
    status = {StatusCode::kMalformedMessage, "dispatch carries no JobRequest"};
  if (!status.is_ok()) return answer_error(dispatch_id, status);
  const wire::JobRequest& request = *request_envelope->body_as_JobRequest();
  std::uint64_t total_bytes = 0;
  auto payload = std::span(frames).subspan(2);
  status = core::validate_request(request, payload, options_.limits, total_bytes);
  if (!status.is_ok()) return answer_error(dispatch_id, status);

  const KernelSpec* kernel = kernels_.find(core::view(request.kernel()));
  if (kernel == nullptr)
    return answer_error(dispatch_id, {StatusCode::kUnknownKernel, "worker " + id_ + " has no kernel '" +
                                                                      std::string(core::view(request.kernel())) + "'"});

  auto execution = std::make_unique<Execution>();
  execution->dispatch_id = dispatch_id;
  execution->kernel = kernel;
  if (deadline_ms > 0) execution->deadline = received + std::chrono::milliseconds(deadline_ms);
  if (request.params())
    for (const auto* p : *request.params()) execution->params.emplace_back(std::string(core::view(p->name())), p->value());
  for (std::size_t i = 0; i < payload.size(); ++i)
    execution->inputs.push_back(core::tensor_from_frame(*request.inputs()->Get(static_cast<flatbuffers::uoffset_t>(i)),
                                                        std::move(payload[i])));

  std::vector<OutputSpec> outputs;
  status = kernel->plan(KernelArgs{execution->inputs, &execution->params}, outputs);
  if (!status.is_ok()) return answer_error(dispatch_id, status);
  try {
    for (auto& spec : outputs) execution->outputs.push_back(backend_->allocate_output(spec));
  } catch (const std::exception& e) {
    return answer_error(dispatch_id, {StatusCode::kResourceExhausted,
                                      std::string("worker cannot allocate the outputs: ") + e.what()});
  }
  execution->transfer_us = micros_between(received, Clock::now());
  ++inflight_;
  backend_->execute(std::move(execution), completion_);
}

void WorkerService::answer_error(std::uint64_t dispatch_id, const Status& status) {
  spdlog::warn("job dispatch {} refused: {}", dispatch_id, status.to_string());
  auto execution = std::make_unique<Execution>();
  execution->dispatch_id = dispatch_id;
  execution->status = status;
  core::Frames frames;
  frames.push_back(result_header(*execution));
  send(frames);
}

void WorkerService::on_complete(std::unique_ptr<Execution> execution) {
  {
    std::lock_guard lock(completed_mutex_);
    completed_.push_back(std::move(execution));
  }
  completed_signal_.notify();
}

void WorkerService::send_completed() {
  std::vector<std::unique_ptr<Execution>> batch;
  {
    std::lock_guard lock(completed_mutex_);
    batch.swap(completed_);
  }
  for (auto& execution : batch) {
    --inflight_;
    core::Frames frames;
    frames.push_back(result_header(*execution));
    if (execution->status.is_ok())
      for (const Tensor& t : execution->outputs) frames.push_back(core::tensor_to_frame(t));
    else
      spdlog::warn("job dispatch {} ({}) failed: {}", execution->dispatch_id, execution->kernel->name,
                   execution->status.to_string());
    send(frames);
  }
}

zmq::message_t WorkerService::result_header(const Execution& execution) {
  flatbuffers::FlatBufferBuilder fbb(512);
  fbb.ForceDefaults(true);  // the broker rewrites job_id and timings in place (docs/protocol.md)
  std::vector<flatbuffers::Offset<wire::TensorDesc>> outputs;
  if (execution.status.is_ok())
    for (const Tensor& t : execution.outputs) outputs.push_back(core::add_tensor_desc(fbb, t));
  auto message = fbb.CreateString(execution.status.message());
  auto outputs_vector = fbb.CreateVector(outputs);
  auto worker_id = fbb.CreateString(id_);
  const DeviceInfo& device = execution.ran_on != nullptr ? *execution.ran_on : backend_->device();
  auto device_name = fbb.CreateString(device.name);
  auto fallback = fbb.CreateString(execution.fallback_reason);
  const wire::Timings timings(0, execution.transfer_us, execution.compute_us);
  auto result = wire::CreateJobResult(fbb, execution.dispatch_id, core::to_wire(execution.status.code()), message,
                                      outputs_vector, worker_id, static_cast<wire::DeviceKind>(device.kind),
                                      device_name, fallback, &timings, 0, 0);
  return core::finish_envelope(fbb, wire::Body::JobResult, result.Union());
}

}  // namespace bridge::worker
