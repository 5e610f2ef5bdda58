// BrokerService: the backend socket. Workers' messages in (after their keys are checked), and
// heartbeats, Reregister and the announcements of large messages out (see broker_service.hpp).
#include <array>
#include <optional>

#include <spdlog/spdlog.h>
#include <zmq_addon.hpp>

#include "bridge/broker/broker_service.hpp"
#include "bridge/core/batch.hpp"
#include "bridge/core/endpoint.hpp"
#include "bridge/core/job_codec.hpp"
#include "bridge/core/liveness.hpp"
#include "bridge/core/protocol.hpp"

namespace bridge::broker {

void BrokerService::receive_workers() {
  int budget = kMaxReceivesPerWakeup;  // in messages: a Batch counts as those it holds
  core::receive_batch(backend_, kMaxReceivesPerWakeup, [&](core::Frames& frames) {
    budget -= handle_worker_message(frames);
    return budget > 0;
  });
}

int BrokerService::handle_worker_message(core::Frames& frames) {
  // frames[0] is the routing id of the connection: each of a worker's connections has its own, and
  // the worker is known by the id in its hello.
  const std::string_view route(frames[0].data<char>(), frames[0].size());
  // Read before decoding: a misaligned header is copied to an aligned frame, without the metadata.
  const std::string key = options_.secure && frames.size() >= 2 ? peer_key(frames[1]) : std::string();
  const wire::Envelope* envelope = nullptr;
  Status s = frames.size() < 2 ? Status(StatusCode::kMalformedMessage, "no header frame")
                               : core::decode_envelope(frames[1], options_.limits, envelope);
  if (!s.is_ok()) {
    if (options_.secure && frames.size() >= 2 && !worker_key_checks("", route, key)) return 1;
    spdlog::warn("worker connection {}: refused message: {}", route, s.to_string());
    return 1;
  }
  const int messages = core::messages_in(envelope);  // counted before the handling may move the frames
  // A Batch's messages each as if it had come alone, on the same connection under the same key.
  core::each_message(
      frames, 1, *envelope, options_.limits,
      [&](const wire::Envelope& message, core::Frames& one) { on_worker_message(route, key, message, one); },
      [&](const Status& refused, const zmq::message_t&) {
        spdlog::warn("worker connection {}: refused: {}", route, refused.to_string());
      });
  return messages;
}

void BrokerService::on_worker_message(std::string_view route, const std::string& key, const wire::Envelope& message,
                                      core::Frames& frames) {
  if (message.body_type() == wire::Body::WorkerHello) return on_hello(route, key, message);
  WorkerRecord* worker = workers_.find_by_route(route);
  static const std::string kNoWorker;
  if (options_.secure && !worker_key_checks(worker != nullptr ? worker->id : kNoWorker, route, key)) return;
  if (worker == nullptr) {
    // After a broker restart, after this broker declared the worker dead, or from a connection the
    // worker has since replaced: ask it to start over (a replaced one is closed; nothing arrives).
    return send_reregister(std::string(route), "unknown worker");
  }
  const std::string& id = worker->id;
  worker->last_seen = Clock::now();
  worker->transfer_grace = std::chrono::milliseconds(0);
  switch (message.body_type()) {
    case wire::Body::Heartbeat: {
      core::protocol::Heartbeat heartbeat;
      (void)core::protocol::decode(message, heartbeat);  // the body type is known: it cannot fail
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
      (void)core::protocol::decode(message, goodbye);
      spdlog::info("worker {} said goodbye ({}); {} job(s) still running there", id, goodbye.reason,
                   worker->inflight.size());
      worker->draining = true;
      if (worker->inflight.empty()) remove_worker(id);
      break;
    }
    default: spdlog::warn("worker {}: ignored a {} message", id, wire::EnumNameBody(message.body_type()));
  }
}

std::string BrokerService::peer_key(const zmq::message_t& frame) {
  const char* user = zmq_msg_gets(const_cast<zmq_msg_t*>(frame.handle()), "User-Id");
  return user != nullptr ? user : "";
}

bool BrokerService::worker_key_checks(const std::string& id, std::string_view route, const std::string& key) {
  // Checked for every message from a worker: nothing is built unless it is refused.
  std::string refused, lost;
  if (!worker_keys_.enrolled(key)) {
    // Enrolled when it connected (ZAP let it on), removed from workers_file since.
    refused = "key " + key + " is not enrolled in " + options_.workers_file;
    lost = "its key " + key + " is no longer in " + options_.workers_file;
  } else if (id.empty()) {
    return true;
  } else if (auto [bound, added] = worker_id_keys_.try_emplace(id, key); !added && bound->second != key) {
    refused = "the id is bound to key " + bound->second + ", not " + key;
    lost = "another key (" + key + ") took over its connection";
  } else {
    return true;
  }
  // Named before the worker may be let go (`id` may live in its record).
  const std::string named = id.empty() ? "worker connection " + std::string(route) : "worker " + id;
  // A bad key on the worker's own connection (its routing id, taken over): whatever the broker sent
  // there may have reached another process. The worker is let go, so nothing more is sent there
  // until its own key says hello. A bad key elsewhere only names the worker: it is ignored.
  if (const WorkerRecord* worker = id.empty() ? nullptr : workers_.find(id);
      worker != nullptr && worker->route == route)
    lose_worker(id, lost);
  log_refusal(named + ": ignored a message: " + refused);
  return false;
}

void BrokerService::send_to_worker(const std::string& id, core::Frames frames) {
  if (const WorkerRecord* worker = workers_.find(id)) send_to_route(worker->route, std::move(frames));
}

void BrokerService::send_to_route(const std::string& route, core::Frames frames) {
  announce_to_route(route, core::message_bytes(frames));
  frames.insert(frames.begin(), zmq::message_t(route.data(), route.size()));
  try {
    if (!zmq::send_multipart(backend_, frames, zmq::send_flags::dontwait))
      spdlog::warn("worker connection {} is not reading (queue full)", route);
  } catch (const zmq::error_t& e) {
    spdlog::debug("worker connection {} unreachable: {}", route, e.what());
  }
}

void BrokerService::announce_to_route(const std::string& route, std::uint64_t bytes) {
  std::optional<zmq::message_t> announcement = core::announce_message(bytes, 0);
  if (!announcement) return;
  workers_.own_sends().note_send(Clock::now(), bytes);
  std::array<zmq::message_t, 2> frames{zmq::message_t(route.data(), route.size()), std::move(*announcement)};
  try {
    zmq::send_multipart(backend_, frames, zmq::send_flags::dontwait);
  } catch (const zmq::error_t&) {
    // unreachable: the message it announces fails the same way, and says so
  }
}

}  // namespace bridge::broker
