#pragma once
/// @file Conversions between the public job/fleet types and the wire format.

#include <chrono>
#include <cstdint>
#include <string>

#include "bridge/core/wire.hpp"
#include "bridge/fleet.hpp"
#include "bridge/job.hpp"

namespace bridge::core {

/// Header frame plus one frame per input tensor (tensor bytes are not copied), but for inputs of at
/// most `inline_bytes` (choose_inline): their bytes are copied into the header. Outputs of at most
/// `inline_bytes` may come back inline too. An empty `request.tenant` becomes `default_tenant`; a
/// zero timeout becomes `default_timeout`. `actor_version_seen`: actor calls, the highest version of
/// the actor the client was told of. `batches`: the sender reads its answer inside a Batch.
Frames encode_request(const JobRequest& request, std::uint64_t job_id, const std::string& default_tenant,
                      std::chrono::milliseconds default_timeout, std::uint64_t actor_version_seen = 0,
                      std::uint32_t inline_bytes = 0, bool batches = false);

/// Fills `out` from a verified JobResult header and its output frames (consumed; inline outputs have
/// none). Returns an error if the outputs do not match their descriptors; `out.job_id` is set even then.
Status decode_result(const wire::JobResult& header, std::span<zmq::message_t> outputs, const Limits& limits,
                     JobResult& out);

flatbuffers::Offset<wire::DeviceInfo> add_device_info(flatbuffers::FlatBufferBuilder& fbb, const DeviceInfo& info);
flatbuffers::Offset<wire::DeviceMetrics> add_device_metrics(flatbuffers::FlatBufferBuilder& fbb,
                                                            const DeviceMetrics& metrics);
DeviceInfo device_info_from(const wire::DeviceInfo* info);
DeviceMetrics device_metrics_from(const wire::DeviceMetrics* metrics);

}  // namespace bridge::core
