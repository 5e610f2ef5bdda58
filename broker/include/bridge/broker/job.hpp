#pragma once
/// @file Job: a client's request while the broker holds it.

#include <chrono>
#include <cstdint>
#include <string>

#include "bridge/core/wire.hpp"
#include "bridge/job.hpp"

namespace bridge::broker {

using Clock = std::chrono::steady_clock;

/// Lives from the moment a request passes verification until its result (or error) is sent. Its frames
/// are the client's request header and payload, forwarded to a worker without being copied.
struct Job {
  std::uint64_t key = 0;               ///< broker-unique
  std::string client;                  ///< ROUTER routing id of the client
  std::uint64_t client_job_id = 0;
  std::string tenant;
  std::string kernel;
  Placement placement = Placement::kAny;
  int priority = 0;
  Clock::time_point received{};
  Clock::time_point deadline{};
  core::Frames frames;                 ///< [request header][payload...]
  std::uint64_t payload_bytes = 0;
  int attempts = 0;                    ///< dispatches so far
  bool holds_quota = false;            ///< an in-flight slot of the tenant is held in Redis
  bool answered = false;               ///< the client has its answer; the worker's credit is still held
  std::uint64_t dispatch_id = 0;       ///< current dispatch (0 while not dispatched)
  Clock::time_point dispatched{};
};

}  // namespace bridge::broker
