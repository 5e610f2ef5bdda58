#include "bridge/status.hpp"

namespace bridge {

std::string status_code_name(StatusCode code) {
  switch (code) {
    case StatusCode::kOk: return "OK";
    case StatusCode::kInvalidArgument: return "INVALID_ARGUMENT";
    case StatusCode::kMalformedMessage: return "MALFORMED_MESSAGE";
    case StatusCode::kVersionMismatch: return "VERSION_MISMATCH";
    case StatusCode::kUnknownKernel: return "UNKNOWN_KERNEL";
    case StatusCode::kUnknownTenant: return "UNKNOWN_TENANT";
    case StatusCode::kTooLarge: return "TOO_LARGE";
    case StatusCode::kResourceExhausted: return "RESOURCE_EXHAUSTED";
    case StatusCode::kQueueFull: return "QUEUE_FULL";
    case StatusCode::kDeadlineExceeded: return "DEADLINE_EXCEEDED";
    case StatusCode::kUnavailable: return "UNAVAILABLE";
    case StatusCode::kWorkerLost: return "WORKER_LOST";
    case StatusCode::kInternal: return "INTERNAL";
    case StatusCode::kNoCapableWorker: return "NO_CAPABLE_WORKER";
    case StatusCode::kCancelled: return "CANCELLED";
    case StatusCode::kPermissionDenied: return "PERMISSION_DENIED";
    case StatusCode::kActorNotActive: return "ACTOR_NOT_ACTIVE";
    case StatusCode::kAborted: return "ABORTED";
    case StatusCode::kUnauthenticated: return "UNAUTHENTICATED";
    case StatusCode::kDataLoss: return "DATA_LOSS";
  }
  return "UNKNOWN(" + std::to_string(static_cast<unsigned>(code)) + ")";
}

std::string Status::to_string() const {
  if (is_ok()) return "OK";
  return status_code_name(code_) + ": " + message_;
}

}  // namespace bridge
