// BrokerService: answers to clients. Those that may go in a Batch wait for the end of the wake-up
// that produced them, gathered per client; the rest go at once, after what was gathered before them
// for the same client (a client sees its answers in the order the broker made them).
#include <spdlog/spdlog.h>
#include <zmq_addon.hpp>

#include "bridge/broker/broker_service.hpp"
#include "bridge/core/protocol.hpp"

namespace bridge::broker {

void BrokerService::reply(const std::string& client, core::Frames frames, bool batchable) {
  if (ledger_.dropped(client)) return;  // it reads nothing; its answers would only pile up here
  auto gathered = gathered_replies_.find(client);
  if (batchable && frames.size() == 1) {
    if (gathered == gathered_replies_.end()) gathered = gathered_replies_.try_emplace(client).first;
    if (!gathered->second.fits(frames[0])) flush_replies(client, gathered->second);
    gathered->second.add(std::move(frames[0]));
    return;
  }
  if (gathered != gathered_replies_.end()) flush_replies(client, gathered->second);
  send_reply(client, std::move(frames));
}

void BrokerService::reply_error(const std::string& client, std::uint64_t job_id, const Status& status,
                                std::uint32_t retry_after_ms, bool batchable) {
  core::Frames frames;
  frames.push_back(core::make_error_result(job_id, status, retry_after_ms));
  reply(client, std::move(frames), batchable);
}

void BrokerService::flush_replies() {
  for (auto& [client, gathered] : gathered_replies_) flush_replies(client, gathered);
  gathered_replies_.clear();
}

void BrokerService::flush_replies(const std::string& client, core::BatchWriter& gathered) {
  if (gathered.empty()) return;
  core::Frames frames;
  frames.push_back(gathered.take());
  if (ledger_.dropped(client)) return;  // dropped since these were gathered (drop_stalled_clients)
  send_reply(client, std::move(frames));
}

void BrokerService::send_reply(const std::string& client, core::Frames frames) {
  // Counted until libzmq has written them to the client's connection (ClientLedger).
  ledger_.count_all(client, frames);
  workers_.own_sends().note_send(Clock::now(), core::message_bytes(frames));
  frames.insert(frames.begin(), zmq::message_t(client.data(), client.size()));
  try {
    if (!zmq::send_multipart(frontend_, frames, zmq::send_flags::dontwait))
      log_refusal("client " + client + " is not reading its results (queue full); dropped a message to it");
  } catch (const zmq::error_t& e) {
    // EHOSTUNREACH: the client disconnected. Its job ended anyway; nothing else to do.
    spdlog::debug("client {} unreachable: {}", client, e.what());
  }
}

}  // namespace bridge::broker
