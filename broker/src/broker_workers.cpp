// BrokerService: the backend socket. Workers' messages in (after their keys are checked), and
// heartbeats, Reregister and the announcements of large messages out (see broker_service.hpp).
#include <array>
#include <optional>

#include <spdlog/spdlog.h>
#include <zmq_addon.hpp>

#include "bridge/broker/broker_service.hpp"
#include "bridge/core/endpoint.hpp"
#include "bridge/core/job_codec.hpp"
#include "bridge/core/liveness.hpp"
#include "bridge/core/protocol.hpp"

namespace bridge::broker {

void BrokerService::receive_workers() {
  core::receive_batch(backend_, kMaxReceivesPerWakeup, [this](core::Frames& frames) {
    handle_worker_message(frames);
    return true;
  });
}

void BrokerService::handle_worker_message(core::Frames& frames) {
  const std::string id = frames[0].to_string();
  if (options_.secure && frames.size() >= 2 && !worker_key_checks(id, frames[1])) return;
  const wire::Envelope* envelope = nullptr;
  Status s = frames.size() < 2 ? Status(StatusCode::kMalformedMessage, "no header frame")
                               : core::decode_envelope(frames[1], options_.limits, envelope);
  if (!s.is_ok()) {
    spdlog::warn("worker {}: refused message: {}", id, s.to_string());
    return;
  }
  if (envelope->body_type() == wire::Body::WorkerHello) return on_hello(id, *envelope);
  WorkerRecord* worker = workers_.find(id);
  if (worker == nullptr) {
    // After a broker restart, or after this broker declared the worker dead: ask it to start over.
    return send_reregister(id, "unknown worker");
  }
  worker->last_seen = Clock::now();
  worker->transfer_grace = std::chrono::milliseconds(0);
  switch (envelope->body_type()) {
    case wire::Body::Heartbeat: {
      core::protocol::Heartbeat heartbeat;
      (void)core::protocol::decode(*envelope, heartbeat);  // the body type is known: it cannot fail
      worker->transfer_grace =
          core::transfer_grace(heartbeat.incoming_bytes, options_.link_floor_mib_s, options_.limits);
      if (!heartbeat.metrics) break;  // an announcement only
      worker->metrics = *heartbeat.metrics;
      metrics_.worker_seen(*worker);
      fleet_view_.publish(*worker, std::chrono::milliseconds(worker->heartbeat_ms) * options_.liveness);
      break;
    }
    case wire::Body::JobResult: on_result(*worker, frames); break;
    case wire::Body::Goodbye: {
      core::protocol::Goodbye goodbye;
      (void)core::protocol::decode(*envelope, goodbye);
      spdlog::info("worker {} said goodbye ({}); {} job(s) still running there", id, goodbye.reason,
                   worker->inflight.size());
      worker->draining = true;
      if (worker->inflight.empty()) remove_worker(id);
      break;
    }
    default: spdlog::warn("worker {}: ignored a {} message", id, wire::EnumNameBody(envelope->body_type()));
  }
}

bool BrokerService::worker_key_checks(const std::string& id, const zmq::message_t& frame) {
  const char* user = zmq_msg_gets(const_cast<zmq_msg_t*>(frame.handle()), "User-Id");
  const std::string key = user != nullptr ? user : "";
  if (!worker_keys_.enrolled(key)) {
    // Enrolled when it connected (ZAP let it on), removed from workers_file since.
    if (workers_.find(id) != nullptr) lose_worker(id, "its key " + key + " is no longer in " + options_.workers_file);
    log_refusal("worker " + id + ": ignored a message: key " + key + " is not enrolled in " + options_.workers_file);
    return false;
  }
  auto [bound, added] = worker_id_keys_.try_emplace(id, key);
  if (!added && bound->second != key) {
    // Another enrolled key took this id's connection (libzmq hands an id over to its newest
    // connection): whatever the broker sent there since reached the wrong process. Let the id go,
    // so nothing more is sent to it until its own key says hello again.
    if (workers_.find(id) != nullptr) lose_worker(id, "another key (" + key + ") took over its connection");
    log_refusal("worker " + id + ": ignored a message: the id is bound to key " + bound->second + ", not " + key);
    return false;
  }
  return true;
}

void BrokerService::send_to_worker(const std::string& id, core::Frames frames) {
  announce_to_worker(id, core::message_bytes(frames));
  frames.insert(frames.begin(), zmq::message_t(id.data(), id.size()));
  try {
    if (!zmq::send_multipart(backend_, frames, zmq::send_flags::dontwait))
      spdlog::warn("worker {} is not reading (queue full)", id);
  } catch (const zmq::error_t& e) {
    spdlog::debug("worker {} unreachable: {}", id, e.what());
  }
}

void BrokerService::announce_to_worker(const std::string& id, std::uint64_t bytes) {
  std::optional<zmq::message_t> announcement = core::announce_message(bytes, 0);
  if (!announcement) return;
  workers_.own_sends().note_send(Clock::now(), bytes);
  std::array<zmq::message_t, 2> frames{zmq::message_t(id.data(), id.size()), std::move(*announcement)};
  try {
    zmq::send_multipart(backend_, frames, zmq::send_flags::dontwait);
  } catch (const zmq::error_t&) {
    // unreachable: the message it announces fails the same way, and says so
  }
}

}  // namespace bridge::broker
