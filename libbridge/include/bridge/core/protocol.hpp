#pragma once
/// @file The protocol's control messages as plain structs, each with its encoder and decoder in one
/// place (docs/protocol.md, "Messages"): what the services send and read between broker, worker and
/// client besides jobs and results. encode() returns the header frame; decode() reads an envelope
/// that decode_envelope() has verified, and refuses another body or a field outside its bounds
/// with a status that says which. Round trips: tests/unit/protocol_test.cpp; every decoder is
/// fuzzed by tests/fuzz/fuzz_wire.cpp.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <zmq.hpp>

#include "bridge/core/wire.hpp"
#include "bridge/fleet.hpp"

namespace bridge::core::protocol {

// ---- Worker <-> broker --------------------------------------------------------------------------

/// W -> B on connect, on reconnect, and when asked by Reregister.
struct WorkerHello {
  /// Kernel names become metric labels and are matched against every request: bounded like any name.
  static constexpr std::size_t kMaxKernels = 1024;
  std::string worker_id;
  std::uint64_t incarnation = 0;  ///< random per process: a re-hello with the same value keeps jobs in flight
  DeviceInfo device;
  std::vector<std::string> kernels;
  std::uint32_t slots = 1;            ///< decode(): within 1..kMaxSlots
  std::uint32_t heartbeat_ms = 1000;  ///< decode(): within 10..60000
  std::uint32_t prefetch = 0;         ///< decode(): at most kMaxPrefetch
  /// This process's connection count, from 1, each connection under its own routing id (0: not
  /// counted); the broker ignores a hello from an older connection than its last.
  std::uint32_t connection = 0;
  /// The dispatches this worker holds as it says hello; decode(): at most kMaxSlots + kMaxPrefetch.
  std::vector<std::uint64_t> running;
  static constexpr std::uint32_t kMaxPrefetch = 4096;
  static constexpr std::uint32_t kMaxSlots = 4096;
};

/// Either way. With `incoming_bytes`, it announces that the sender's next message is that large
/// (core/liveness.hpp); `metrics` is absent then, and in the broker's heartbeats.
struct Heartbeat {
  std::uint32_t inflight = 0;
  std::optional<DeviceMetrics> metrics;
  std::uint64_t incoming_bytes = 0;
};

/// Either way: the sender is going away (a worker drains first; a broker's workers reconnect).
struct Goodbye {
  std::string reason;
};

/// B -> W: "I do not know you, send WorkerHello again".
struct Reregister {
  std::string reason;
};

/// B -> W: drop the activation of actor `actor` ("TENANT/ID").
struct Deactivate {
  std::string actor;
};

/// B -> W: stop dispatch `dispatch_id`; `reason` is CANCELLED or DEADLINE_EXCEEDED.
struct Cancel {
  std::uint64_t dispatch_id = 0;
  StatusCode reason = StatusCode::kCancelled;
};

// ---- Client <-> broker --------------------------------------------------------------------------

struct Ping {
  std::uint64_t request_id = 0;
};

/// B -> C, the answer to a Ping: which broker process answers (its incarnation changes at a restart).
struct Pong {
  std::uint64_t request_id = 0;
  std::string broker_id;
  std::uint64_t incarnation = 0;
};

/// C -> B: stop job `job_id` of this client.
struct CancelRequest {
  std::uint64_t job_id = 0;
};

struct StatusRequest {
  std::uint64_t request_id = 0;
};

/// Empty tenant: the caller's key's tenant (every tenant for an operator key).
struct QuotaRequest {
  std::uint64_t request_id = 0;
  std::string tenant;
};

/// Empty tenant: the caller's key's tenant.
struct ActorRequest {
  std::uint64_t request_id = 0;
  std::string tenant;
  std::string actor_id;
  bool reset = false;  ///< drop the actor's tensors and its loss mark (Actor::reset); else only look
};

zmq::message_t encode(const WorkerHello& m);
zmq::message_t encode(const Heartbeat& m);
zmq::message_t encode(const Goodbye& m);
zmq::message_t encode(const Reregister& m);
zmq::message_t encode(const Deactivate& m);
zmq::message_t encode(const Cancel& m);
zmq::message_t encode(const Ping& m);
zmq::message_t encode(const Pong& m);
zmq::message_t encode(const CancelRequest& m);
zmq::message_t encode(const StatusRequest& m);
zmq::message_t encode(const QuotaRequest& m);
zmq::message_t encode(const ActorRequest& m);

/// Refuses more than kMaxKernels kernels, or a kernel name empty or over limits.max_name_bytes.
Status decode(const wire::Envelope& envelope, const Limits& limits, WorkerHello& out);
Status decode(const wire::Envelope& envelope, Heartbeat& out);
Status decode(const wire::Envelope& envelope, Goodbye& out);
Status decode(const wire::Envelope& envelope, Reregister& out);
Status decode(const wire::Envelope& envelope, Deactivate& out);
/// A reason other than DEADLINE_EXCEEDED reads as CANCELLED.
Status decode(const wire::Envelope& envelope, Cancel& out);
Status decode(const wire::Envelope& envelope, Ping& out);
Status decode(const wire::Envelope& envelope, Pong& out);
Status decode(const wire::Envelope& envelope, CancelRequest& out);
Status decode(const wire::Envelope& envelope, StatusRequest& out);
Status decode(const wire::Envelope& envelope, QuotaRequest& out);
Status decode(const wire::Envelope& envelope, ActorRequest& out);

}  // namespace bridge::core::protocol
