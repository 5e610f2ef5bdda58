#pragma once
/// @file Job: a client's request while the broker holds it.

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

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
  std::string kernel;                  ///< the first kernel (for logs and messages)
  std::vector<std::string> kernels;    ///< every kernel a worker needs: kernel, then pipeline stages
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

  // Actor calls.
  std::string actor;                   ///< "<tenant>/<actor id>"; empty for a plain job
  bool holds_actor_turn = false;       ///< the actor runs no other call until this one is over
  std::string pinned_worker;           ///< must run here (the actor's activation), unless it left
  bool activate = false;               ///< the dispatch carries the actor's state from Redis
  std::vector<Tensor> activation;      ///< that state, until dispatched
  std::uint64_t actor_version = 0;     ///< the state version the call starts from
  int reactivations = 0;               ///< times a worker answered ACTOR_NOT_ACTIVE
};

}  // namespace bridge::broker
