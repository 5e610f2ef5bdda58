#include "bridge/core/job_codec.hpp"

#include <algorithm>
#include <limits>

namespace bridge::core {

namespace {

flatbuffers::Offset<flatbuffers::Vector<flatbuffers::Offset<wire::Param>>> add_params(
    flatbuffers::FlatBufferBuilder& fbb, const std::map<std::string, double>& params) {
  std::vector<flatbuffers::Offset<wire::Param>> out;
  for (const auto& [name, value] : params) out.push_back(wire::CreateParam(fbb, fbb.CreateString(name), value));
  return fbb.CreateVector(out);
}

bool is_resident_input(const JobRequest& request, std::size_t i) {
  return i < request.resident_inputs.size() && !request.resident_inputs[i].empty();
}

}  // namespace

Frames encode_request(const JobRequest& request, std::uint64_t job_id, const std::string& default_tenant,
                      std::chrono::milliseconds default_timeout, std::uint64_t actor_version_seen,
                      std::uint32_t inline_bytes, bool batches) {
  flatbuffers::FlatBufferBuilder fbb(512);
  // A resident reference may stand where no tensor was given.
  const std::size_t input_count = std::max(request.inputs.size(), request.resident_inputs.size());
  const std::vector<bool> inlined = choose_inline(request.inputs, inline_bytes);
  auto has_frame = [&](std::size_t i) {
    return !is_resident_input(request, i) && (i >= inlined.size() || !inlined[i]);
  };
  std::vector<flatbuffers::Offset<wire::TensorDesc>> inputs;
  inputs.reserve(input_count);
  for (std::size_t i = 0; i < input_count; ++i) {
    if (is_resident_input(request, i)) {
      auto name = fbb.CreateString(request.resident_inputs[i]);
      wire::TensorDescBuilder desc(fbb);
      desc.add_resident(name);
      inputs.push_back(desc.Finish());
    } else {
      inputs.push_back(add_tensor_desc(fbb, i < request.inputs.size() ? request.inputs[i] : Tensor(), !has_frame(i)));
    }
  }
  std::vector<flatbuffers::Offset<wire::Stage>> stages;
  for (const Stage& stage : request.stages)
    stages.push_back(wire::CreateStage(fbb, fbb.CreateString(stage.kernel), add_params(fbb, stage.params)));
  std::vector<flatbuffers::Offset<flatbuffers::String>> keep;
  for (const auto& name : request.keep_outputs) keep.push_back(fbb.CreateString(name));
  const auto timeout = request.timeout.count() > 0 ? request.timeout : default_timeout;
  auto body = wire::CreateJobRequest(
      fbb, job_id, fbb.CreateString(request.tenant.empty() ? default_tenant : request.tenant),
      request.actor_id.empty() ? 0 : fbb.CreateString(request.actor_id), fbb.CreateString(request.kernel),
      fbb.CreateVector(inputs), add_params(fbb, request.params),
      static_cast<std::int8_t>(std::clamp(request.priority, -128, 127)),
      static_cast<std::uint32_t>(std::min<std::int64_t>(timeout.count(), std::numeric_limits<std::uint32_t>::max())),
      static_cast<wire::Placement>(request.placement), stages.empty() ? 0 : fbb.CreateVector(stages),
      keep.empty() ? 0 : fbb.CreateVector(keep), request.actor_id.empty() ? 0 : actor_version_seen, inline_bytes);
  Frames frames;
  frames.reserve(1 + input_count);
  frames.push_back(finish_envelope(fbb, wire::Body::JobRequest, body.Union(), batches));
  for (std::size_t i = 0; i < input_count; ++i)
    if (has_frame(i)) frames.push_back(tensor_to_frame(i < request.inputs.size() ? request.inputs[i] : Tensor()));
  return frames;
}

Status decode_result(const wire::JobResult& header, std::span<zmq::message_t> outputs, const Limits& limits,
                     JobResult& out) {
  out.job_id = header.job_id();
  out.status = Status(from_wire(header.status()), std::string(view(header.message())));
  out.worker_id = std::string(view(header.worker_id()));
  out.device_kind = static_cast<DeviceKind>(header.device_kind());
  out.device_name = std::string(view(header.device_name()));
  out.fallback_reason = std::string(view(header.fallback_reason()));
  if (const auto* t = header.timings()) {
    out.timings.queued = std::chrono::microseconds(t->queued_us());
    out.timings.transfer = std::chrono::microseconds(t->transfer_us());
    out.timings.compute = std::chrono::microseconds(t->compute_us());
  }
  out.retry_after = std::chrono::milliseconds(header.retry_after_ms());
  out.attempts = header.attempts();
  out.batch_size = static_cast<int>(header.batch_size());
  out.actor_version = header.actor_version();
  out.stage_timings.clear();
  if (header.stage_timings())
    for (const auto* t : *header.stage_timings())
      out.stage_timings.push_back({std::string(view(t->kernel())), std::chrono::microseconds(t->compute_us())});
  out.kept.clear();
  if (header.kept())
    for (const auto* k : *header.kept()) out.kept.emplace_back(view(k->name()));
  std::uint64_t total = 0;
  BRIDGE_RETURN_IF_ERROR(validate_tensors(header.outputs(), outputs, limits, total));
  out.outputs.clear();
  std::size_t frame = 0;
  if (header.outputs() != nullptr)
    for (const auto* desc : *header.outputs()) out.outputs.push_back(take_tensor(*desc, outputs, frame));
  return {};
}

flatbuffers::Offset<wire::DeviceInfo> add_device_info(flatbuffers::FlatBufferBuilder& fbb, const DeviceInfo& info) {
  return wire::CreateDeviceInfo(fbb, static_cast<wire::DeviceKind>(info.kind), fbb.CreateString(info.name),
                                info.total_memory_bytes, info.compute_capability_major, info.compute_capability_minor,
                                info.multiprocessors);
}

flatbuffers::Offset<wire::DeviceMetrics> add_device_metrics(flatbuffers::FlatBufferBuilder& fbb,
                                                            const DeviceMetrics& m) {
  return wire::CreateDeviceMetrics(fbb, m.free_memory_bytes, m.utilization_percent, m.temperature_c, m.power_watts,
                                   m.pool_bytes_in_use, m.pool_bytes_cached, m.pool_hits, m.pool_misses,
                                   m.gpu_disabled);
}

DeviceInfo device_info_from(const wire::DeviceInfo* info) {
  DeviceInfo out;
  if (info == nullptr) return out;
  out.kind = static_cast<DeviceKind>(info->kind());
  out.name = std::string(view(info->name()));
  out.total_memory_bytes = info->total_memory_bytes();
  out.compute_capability_major = info->compute_capability_major();
  out.compute_capability_minor = info->compute_capability_minor();
  out.multiprocessors = info->multiprocessors();
  return out;
}

DeviceMetrics device_metrics_from(const wire::DeviceMetrics* m) {
  DeviceMetrics out;
  if (m == nullptr) return out;
  out.free_memory_bytes = m->free_memory_bytes();
  out.utilization_percent = m->utilization_percent();
  out.temperature_c = m->temperature_c();
  out.power_watts = m->power_watts();
  out.pool_bytes_in_use = m->pool_bytes_in_use();
  out.pool_bytes_cached = m->pool_bytes_cached();
  out.pool_hits = m->pool_hits();
  out.pool_misses = m->pool_misses();
  out.gpu_disabled = m->gpu_disabled();
  return out;
}

}  // namespace bridge::core
