// WorkerService's sends to the broker: answers gathered over a wake-up into one Batch (only where
// the broker reads Batches), everything else at once after them, and large messages announced.
#include <array>

#include <spdlog/spdlog.h>
#include <zmq_addon.hpp>

#include "bridge/core/liveness.hpp"
#include "bridge/worker/worker_service.hpp"

namespace bridge::worker {

void WorkerService::send(core::Frames& frames) {
  flush_answers();
  transmit(frames);
}

void WorkerService::send_answer(core::Frames& frames) {
  if (frames.size() != 1 || !broker_reads_batches_) return send(frames);
  if (!gathered_answers_.fits(frames[0])) flush_answers();
  gathered_answers_.add(std::move(frames[0]));
}

void WorkerService::flush_answers() {
  if (gathered_answers_.empty()) return;
  core::Frames frames;
  frames.push_back(gathered_answers_.take());
  transmit(frames);
}

void WorkerService::transmit(core::Frames& frames) {
  // A DEALER queues while the broker is away (up to its high-water mark); a failed send is logged
  // and the broker's liveness check recovers the job elsewhere.
  const std::uint64_t bytes = core::message_bytes(frames);
  if (auto announcement = core::announce_message(bytes, inflight_)) {
    // A large result holds up the heartbeats behind it until the broker has all of it. This
    // announcement may itself wait for the result (results_coming()), so heartbeats announce it too.
    // Meanwhile the broker's heartbeats wait too (its I/O thread decrypts the result): not silence.
    own_sends_.note_send(Clock::now(), bytes);
    std::array<zmq::message_t, 1> heartbeat{std::move(*announcement)};
    zmq::send_multipart(*socket_, heartbeat, zmq::send_flags::dontwait);
  }
  if (zmq::send_multipart(*socket_, frames, zmq::send_flags::dontwait)) return;
  // After a refused handshake nothing can be sent; that was logged once (log_handshakes).
  if (!handshake_failure_.empty())
    spdlog::debug("send queue to broker {} is full (the handshake was refused); dropped a message", broker());
  else
    spdlog::warn("send queue to broker {} is full; dropped a message", broker());
}

}  // namespace bridge::worker
