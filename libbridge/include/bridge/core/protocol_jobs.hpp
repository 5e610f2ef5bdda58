#pragma once
/// @file The headers that travel with a job's tensors between broker and worker, as plain structs
/// with their encoders: a Dispatch (B -> W) and a worker's JobResult (W -> B). The frames around
/// them are frame_layouts.hpp's; the readers are the worker's DispatchDecoder and the broker's
/// result checks, which verify each field against the frames before use. Tensors appear here as
/// descriptions (name, dtype, shape), their bytes in frames of their own, but for a result's small
/// outputs, which may be inline.

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <zmq.hpp>

#include "bridge/core/wire.hpp"
#include "bridge/fleet.hpp"
#include "bridge/job.hpp"

namespace bridge::core::protocol {

/// B -> W: run the request that follows. [this][JobRequest header, unless `request` holds it][its
/// tensors][activation tensors] (DispatchLayout).
struct DispatchHeader {
  std::uint64_t dispatch_id = 0;
  std::uint32_t deadline_ms = 1;  ///< from the worker's receipt: the job's deadline
  std::string_view actor;         ///< actor calls: "TENANT/ID"; empty otherwise (borrowed, as the span)
  std::uint64_t actor_version = 0;
  bool activate = false;                 ///< the activation's tensors follow the request's
  std::span<const Tensor> activation;    ///< described here, sent as frames (activate only)
  /// From the job's start on the worker (which may be later than its receipt: a prefetched job
  /// waits for a slot): its tenant's max_job_ms. 0: none beyond the deadline.
  std::uint32_t max_run_ms = 0;
  /// The client's JobRequest header, copied in when it is small (no request frame then follows).
  std::span<const std::uint8_t> request;
  /// The job's tenant as the broker resolved it: the request's own field may be empty (borrowed).
  std::string_view tenant;
};

/// W -> B: a job's result. [this][returned outputs not inline][kept tensors] (ResultLayout).
/// Written with every field present, so that the broker can rewrite job_id, attempts and timings in
/// place.
struct ResultHeader {
  std::uint64_t dispatch_id = 0;
  Status status;
  std::span<const Tensor> returned;  ///< what the client gets
  std::vector<bool> inline_returned;  ///< which of `returned` are inline (choose_inline); none if empty
  std::span<const Tensor> kept;      ///< an actor call's new state, named as kept
  std::string worker_id;
  const DeviceInfo* device = nullptr;  ///< the device that produced it (required; borrowed, as the spans)
  std::string fallback_reason;
  std::uint64_t transfer_us = 0;
  std::uint64_t compute_us = 0;
  std::vector<StageTiming> stages;   ///< pipelines: one per step
  std::uint32_t batch_size = 1;
  std::uint64_t actor_version = 0;
};

zmq::message_t encode(const DispatchHeader& m);
zmq::message_t encode(const ResultHeader& m);

}  // namespace bridge::core::protocol
