#include "bridge/worker/dispatch_decoder.hpp"

#include <algorithm>

#include <spdlog/spdlog.h>

#include "bridge/core/frame_layouts.hpp"
#include "bridge/core/job_codec.hpp"

namespace bridge::worker {
namespace {

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
    return {StatusCode::kInvalidArgument, kernel.name + ": unknown param '" + name +
                                              "' (its params: " + (known.empty() ? std::string("none") : known) + ")"};
  }
  return {};
}

}  // namespace

DispatchDecoder::DispatchDecoder(const KernelRegistry& kernels, const core::Limits& limits, ActorHost& actors,
                                 std::string worker_id)
    : kernels_(kernels), limits_(limits), actors_(actors), worker_id_(std::move(worker_id)) {}

Status DispatchDecoder::decode(const wire::Dispatch& dispatch, core::Frames& frames, Clock::time_point received,
                               std::unique_ptr<Execution>& out) {
  const std::uint64_t dispatch_id = dispatch.dispatch_id();
  const std::uint32_t deadline_ms = dispatch.deadline_ms();
  const wire::Envelope* request_envelope = nullptr;
  // The request's header is inside the Dispatch (a small one), or the frame after it.
  const bool embedded = dispatch.request() != nullptr;
  if (!embedded && frames.size() < 2) return {StatusCode::kMalformedMessage, "dispatch without a request frame"};
  Status status = embedded ? core::verify_envelope({dispatch.request()->data(), dispatch.request()->size()}, limits_,
                                                   request_envelope)
                           : core::decode_envelope(frames[1], limits_, request_envelope);
  if (status.is_ok() && request_envelope->body_type() != wire::Body::JobRequest)
    status = {StatusCode::kMalformedMessage, "dispatch carries no JobRequest"};
  if (!status.is_ok()) return status;
  const wire::JobRequest& request = *request_envelope->body_as_JobRequest();
  // [dispatch][request, unless embedded][the request's tensors with a frame][the activation's
  // tensors, when activating]
  const core::DispatchLayout layout = core::DispatchLayout::of(request, embedded);
  auto after_header = std::span(frames).subspan(1);
  if (Status s = layout.check(after_header.size()); !s.is_ok()) return s;
  auto payload = layout.input_frames(after_header);
  auto activation_frames = layout.activation_frames(after_header);
  std::uint64_t total_bytes = 0;
  status = core::validate_request(request, payload, limits_, total_bytes);
  if (!status.is_ok()) return status;

  auto execution = std::make_unique<Execution>();
  execution->dispatch_id = dispatch_id;
  execution->job_id = request.job_id();
  // The broker's word for the tenant (the request's own field may be empty); from a broker that
  // predates Dispatch.tenant, the request's, which the broker checked against the client's key.
  execution->tenant = std::string(core::view(dispatch.tenant() != nullptr ? dispatch.tenant() : request.tenant()));
  if (deadline_ms > 0) execution->deadline = received + std::chrono::milliseconds(deadline_ms);
  execution->max_run = std::chrono::milliseconds(dispatch.max_run_ms());
  execution->inline_outputs = request.inline_outputs();
  auto find_kernel = [&](const flatbuffers::String* name) -> const KernelSpec* {
    const KernelSpec* kernel = kernels_.find(core::view(name));
    if (kernel == nullptr)
      status = {StatusCode::kUnknownKernel,
                "worker " + worker_id_ + " has no kernel '" + std::string(core::view(name)) + "'"};
    return kernel;
  };
  auto read_params = [](const flatbuffers::Vector<flatbuffers::Offset<wire::Param>>* list, Params& into) {
    if (list)
      for (const auto* p : *list) into.emplace_back(std::string(core::view(p->name())), p->value());
  };
  if ((execution->kernel = find_kernel(request.kernel())) == nullptr) return status;
  read_params(request.params(), execution->params);
  if (request.stages())
    for (const auto* stage : *request.stages()) {
      Step& step = execution->then.emplace_back();
      if ((step.kernel = find_kernel(stage->kernel())) == nullptr) return status;
      read_params(stage->params(), step.params);
    }

  Activation* activation = nullptr;
  if (dispatch.actor() != nullptr && dispatch.actor()->size() > 0) {
    activation = bind_actor(dispatch, activation_frames, *execution, status);
    if (activation == nullptr) return status;
    if (request.keep_outputs())
      for (const auto* name : *request.keep_outputs()) execution->keep_outputs.emplace_back(core::view(name));
  } else if (!activation_frames.empty()) {
    return {StatusCode::kMalformedMessage, "dispatch has more frames than its tensors"};
  }
  std::size_t frame = 0;
  for (flatbuffers::uoffset_t i = 0; request.inputs() != nullptr && i < request.inputs()->size(); ++i) {
    const wire::TensorDesc* desc = request.inputs()->Get(i);
    if (!core::is_resident(*desc)) {
      execution->inputs.push_back(core::take_tensor(*desc, payload, frame));
      if (!execution->resident_copies.empty()) execution->resident_copies.push_back(nullptr);
      continue;
    }
    const std::string name(core::view(desc->resident()));
    auto it = activation == nullptr ? decltype(activation->tensors)::iterator{} : activation->tensors.find(name);
    if (activation == nullptr || it == activation->tensors.end())
      return {StatusCode::kInvalidArgument, "actor " + execution->actor + " has no resident tensor '" + name +
                                                "'; put it first (Actor::put) or keep it from an earlier call"};
    execution->resident_copies.resize(execution->inputs.size());  // nulls for the sent inputs before it
    execution->resident_copies.push_back(activation->device_copy(name));
    execution->inputs.push_back(it->second);
  }

  status = plan(*execution);
  if (!status.is_ok()) return status;
  if (const std::size_t outputs = execution->step_planned(execution->step_count() - 1).size();
      execution->keep_outputs.size() > outputs)
    return {StatusCode::kInvalidArgument, "keep_outputs names " + std::to_string(execution->keep_outputs.size()) +
                                              " outputs; " + execution->step_kernel(execution->step_count() - 1).name +
                                              " gives " + std::to_string(outputs)};
  out = std::move(execution);
  return {};
}

Activation* DispatchDecoder::bind_actor(const wire::Dispatch& dispatch, std::span<zmq::message_t> activation_frames,
                                        Execution& execution, Status& status) {
  execution.actor = std::string(core::view(dispatch.actor()));
  execution.actor_version = dispatch.actor_version();
  if (dispatch.activate()) {
    std::uint64_t bytes = 0;
    status = core::validate_tensors(dispatch.activation(), activation_frames, limits_, bytes, {.inline_data = false});
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
                  (activation == nullptr ? " is not active on worker " + worker_id_
                                         : " is at version " + std::to_string(activation->version) + " on worker " +
                                               worker_id_ + ", not " + std::to_string(execution.actor_version))};
    return nullptr;
  }
  return activation;
}

Status DispatchDecoder::plan(Execution& execution) {
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
      std::uint64_t bytes = 0, extent = 0;
      if (!shape_bytes(spec.shape, spec.dtype, bytes, extent) || extent > limits_.max_tensor_bytes)
        return {StatusCode::kTooLarge,
                where("output '" + spec.name + "' would be " +
                      (extent == 0 ? std::string("too large to count")
                                   : std::to_string(extent) + " bytes (a dimension of 0 counted as 1)") +
                      ", over the worker's max_tensor_bytes of " + std::to_string(limits_.max_tensor_bytes))};
      total_bytes += bytes;
      if (total_bytes > limits_.max_job_bytes)
        return {StatusCode::kTooLarge, where("the job's outputs would take " + std::to_string(total_bytes) +
                                             " bytes (all steps together), over the worker's max_job_bytes of " +
                                             std::to_string(limits_.max_job_bytes))};
      // The next step plans on what this one declares; no bytes exist yet (prepare_execution()).
      descriptors.push_back(Tensor::adopt(spec.dtype, spec.shape, spec.name, nullptr, nullptr, 0));
    }
    (i == 0 ? execution.outputs : execution.then[i - 1].outputs) = std::move(descriptors);
  }
  // prepare_execution() allocates what was declared; the descriptors only served planning.
  for (std::size_t i = 0; i < steps; ++i) (i == 0 ? execution.outputs : execution.then[i - 1].outputs).clear();
  return {};
}

}  // namespace bridge::worker
