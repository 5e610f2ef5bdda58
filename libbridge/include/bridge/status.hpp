#pragma once
/// @file Status codes and the Status value every fallible call returns (errors are values, not exceptions).

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include "bridge/export.hpp"

namespace bridge {

/// Every status a client can receive. Values are the wire values of `bridge.wire.StatusCode`
/// (schemas/bridge.fbs); docs/protocol.md says what each means and what to do about it.
enum class StatusCode : std::uint16_t {
  kOk = 0,
  kInvalidArgument = 1,
  kMalformedMessage = 2,
  kVersionMismatch = 3,
  kUnknownKernel = 4,
  kUnknownTenant = 5,
  kTooLarge = 6,
  kResourceExhausted = 7,
  kQueueFull = 8,
  kDeadlineExceeded = 9,
  kUnavailable = 10,
  kWorkerLost = 11,
  kInternal = 12,
  kNoCapableWorker = 13,
  kCancelled = 14,
  kPermissionDenied = 15,
  kActorNotActive = 16,
  kAborted = 17,
  kUnauthenticated = 18,  ///< the CURVE key is not enrolled for any tenant (never listed in tenants.yaml, or revoked)
  kDataLoss = 19,         ///< an actor's acknowledged state is gone from Redis; Actor::reset() to go on
};

/// Upper-case name as on the wire docs, e.g. "RESOURCE_EXHAUSTED"; "UNKNOWN(n)" for a value out of range.
BRIDGE_API std::string status_code_name(StatusCode code);

/// A code plus a message that tells the reader what to fix. Cheap to move; `Status{}` is OK.
class [[nodiscard]] BRIDGE_API Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status ok() { return {}; }

  bool is_ok() const { return code_ == StatusCode::kOk; }
  explicit operator bool() const { return is_ok(); }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }

  /// "CODE: message", for logs and error output.
  std::string to_string() const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

}  // namespace bridge

/// Early return on error, for functions that return Status.
#define BRIDGE_RETURN_IF_ERROR(expr)                    \
  do {                                                  \
    ::bridge::Status bridge_status_ = (expr);           \
    if (!bridge_status_.is_ok()) return bridge_status_; \
  } while (0)
