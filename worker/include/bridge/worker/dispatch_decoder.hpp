#pragma once
/// @file DispatchDecoder: a Dispatch from the broker into an Execution ready for a backend, or the
/// status that refuses it. Everything a worker checks before a job may run lives here: the frames
/// against their descriptors, the kernels and their params, the actor's activation and resident
/// tensors, and the outputs each step declares against the limits, before a byte is allocated.

#include <chrono>
#include <memory>
#include <span>
#include <string>

#include "bridge/core/wire.hpp"
#include "bridge/worker/actor_host.hpp"
#include "bridge/worker/backend.hpp"
#include "bridge/worker/kernel.hpp"

namespace bridge::worker {

/// Not thread-safe: used by the worker's socket thread, which owns `actors`.
class DispatchDecoder {
 public:
  using Clock = std::chrono::steady_clock;

  DispatchDecoder(const KernelRegistry& kernels, const core::Limits& limits, ActorHost& actors, std::string worker_id);

  /// Decodes `dispatch` and its frames ([dispatch][request][the request's tensors with data][the
  /// activation's tensors, when activating]); the tensors take the frames' bytes without a copy. An
  /// activation in the dispatch is installed in `actors`. On success `out` is the planned execution,
  /// its deadline counted from `received`.
  Status decode(const wire::Dispatch& dispatch, core::Frames& frames, Clock::time_point received,
                std::unique_ptr<Execution>& out);

 private:
  /// Resolves the actor of an actor call (activating it first if the dispatch says so) and fills
  /// `execution.actor`; nullptr activation with `status` set on failure.
  Activation* bind_actor(const wire::Dispatch& dispatch, std::span<zmq::message_t> activation_frames,
                         Execution& execution, Status& status);
  /// Plans every step (params known, outputs declared) and checks the declared outputs against the
  /// limits: TOO_LARGE before any byte is allocated. Allocation is the backend's (prepare_execution()).
  Status plan(Execution& execution);

  const KernelRegistry& kernels_;
  const core::Limits& limits_;
  ActorHost& actors_;
  std::string worker_id_;
};

}  // namespace bridge::worker
