#pragma once
/// @file HomeProbe: whether a worker's first broker (its home) answers again, asked while the
/// worker serves another broker of its list, so that workers come back to a broker that restarted
/// instead of leaving it without any (docs/architecture.md, "Several brokers").

#include <chrono>
#include <memory>
#include <string>

#include <zmq.hpp>

#include "bridge/core/curve.hpp"

namespace bridge::worker {

/// One question at a time, on a socket of its own (routing id `<worker id>.home-probe`, so that the
/// broker never takes it for the worker): a Heartbeat, which a live broker answers (Reregister, as
/// to any worker it does not know). Loop-thread only.
class HomeProbe {
 public:
  enum class Answer { kNone, kAlive };

  HomeProbe(zmq::context_t& context, std::string worker_id, const core::CurveClientKeys& curve)
      : context_(context), routing_id_(std::move(worker_id) + ".home-probe"), curve_(curve) {}

  /// Asks `home` every `every` (answers wait at most that long); kAlive once it answered.
  Answer poll(const std::string& home, std::chrono::milliseconds every, std::chrono::steady_clock::time_point now);
  /// Stops asking (the worker is home, or leaving).
  void reset() { socket_.reset(); }

 private:
  zmq::context_t& context_;
  std::string routing_id_;
  const core::CurveClientKeys& curve_;
  std::unique_ptr<zmq::socket_t> socket_;  ///< while a question is out
  std::chrono::steady_clock::time_point asked_{};
};

}  // namespace bridge::worker
