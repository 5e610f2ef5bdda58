#pragma once
/// @file The broker's answers to a client's status, quota and actor requests, as plain structs over
/// the public types (FleetStatus, QuotaReport, ActorInfo), each with its encoder (the broker's) and
/// decoder (the client's) in one place. See protocol.hpp for the requests.

#include <cstdint>

#include <zmq.hpp>

#include "bridge/core/wire.hpp"
#include "bridge/fleet.hpp"

namespace bridge::core::protocol {

struct StatusReply {
  std::uint64_t request_id = 0;
  FleetStatus fleet;
};

/// `error` not OK: the report is not given (PERMISSION_DENIED: another tenant's; UNKNOWN_TENANT;
/// UNAVAILABLE: the broker is answering too many quota requests, retry).
struct QuotaReply {
  std::uint64_t request_id = 0;
  QuotaReport report;
  Status error;
};

/// `status` not OK: the actor could not be looked up (and why).
struct ActorReply {
  std::uint64_t request_id = 0;
  Status status;
  ActorInfo actor;  ///< actor_id is the request's, not sent back; tenant is the one the broker resolved
};

zmq::message_t encode(const StatusReply& m);
zmq::message_t encode(const QuotaReply& m);
zmq::message_t encode(const ActorReply& m);

Status decode(const wire::Envelope& envelope, StatusReply& out);
/// An error with code OK (a broker older than error_code) reads as UNKNOWN_TENANT.
Status decode(const wire::Envelope& envelope, QuotaReply& out);
/// Resident tensors whose descriptions do not check (dtype, dimensions) are skipped, never thrown on.
Status decode(const wire::Envelope& envelope, ActorReply& out);

}  // namespace bridge::core::protocol
