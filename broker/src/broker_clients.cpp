// BrokerService: the frontend socket. Clients' messages in: read (the connection's key and
// descriptor, the header decoded), then, after the frontend's monitor, checked and handled, a
// Batch's messages each as if it had come alone (see broker_service.hpp).
#include <spdlog/spdlog.h>

#include "bridge/broker/broker_service.hpp"
#include "bridge/core/batch.hpp"
#include "bridge/core/endpoint.hpp"

namespace bridge::broker {

void BrokerService::receive_clients() {
  std::vector<ClientMessage> received;
  int budget = kMaxReceivesPerWakeup;  // in messages: a Batch counts as those it holds
  core::receive_batch(frontend_, kMaxReceivesPerWakeup, [&](core::Frames& frames) {
    budget -= read_client_message(received.emplace_back(), frames);
    return budget > 0;
  });
  // After the receives: every connection these messages came on was reported accepted, and any
  // that closed before it on the same descriptor reported gone, so descriptors name connections.
  drain_frontend_monitor();
  for (ClientMessage& message : received) handle_client_message(message);
}

int BrokerService::read_client_message(ClientMessage& message, core::Frames& frames) {
  message.frames = std::move(frames);
  if (message.frames.size() < 2) return 1;
  // Before decoding, which may move the header into an aligned copy without the connection's
  // metadata: the key (the ZAP user id) and the descriptor it came on.
  message.caller = identify(message.frames[1]);
  message.fd = zmq_msg_get(const_cast<zmq_msg_t*>(message.frames[1].handle()), ZMQ_SRCFD);
  const wire::Envelope* envelope = nullptr;
  message.decoded = core::decode_envelope(message.frames[1], options_.limits, envelope);
  return core::messages_in(envelope);
}

void BrokerService::drain_frontend_monitor() {
  frontend_monitor_->drain([this](int fd) { bindings_.disconnected(fd); });
}

BrokerService::Caller BrokerService::identify(const zmq::message_t& frame) const {
  Caller caller;
  if (!options_.secure) {
    caller.is_operator = true;  // no identities: nothing to isolate
    return caller;
  }
  // The ZAP handler made the key the connection's user id; libzmq puts it on every message.
  const char* user = zmq_msg_gets(const_cast<zmq_msg_t*>(frame.handle()), "User-Id");
  caller.key = user != nullptr ? user : "";
  if (const std::string* tenant = tenants_.tenant_of_key(caller.key))
    caller.tenant = *tenant;  // a key is a tenant's or an operator's, never both (TenantTable)
  else
    caller.is_operator = tenants_.is_operator_key(caller.key);
  return caller;
}

void BrokerService::handle_client_message(ClientMessage& received) {
  core::Frames& frames = received.frames;
  std::string client = frames[0].to_string();  // ROUTER always prepends the routing id
  if (ledger_.dropped(client)) {
    spdlog::debug("client {}: ignored a message: dropped for not reading its results", client);
    return;
  }
  if (frames.size() < 2) return reply_error(client, 0, {StatusCode::kMalformedMessage, "message has no header frame"});
  if (!received.decoded.is_ok()) return refuse_client_message(client, frames[1], received.decoded);
  // Verified when it was read (and, if it had to be, moved to aligned memory, which moves with the frame).
  const auto* envelope = flatbuffers::GetRoot<wire::Envelope>(frames[1].data());
  // A Batch's messages each as if it had come alone, on the same connection under the same key. A
  // message alone takes the routing id (no copy per job); each of a Batch's gets its own.
  const bool alone = envelope->body_type() != wire::Body::Batch;
  core::each_message(
      frames, 1, *envelope, options_.limits,
      [&](const wire::Envelope& message, core::Frames& one) {
        on_client_message(alone ? std::move(client) : client, received.caller, received.fd, message, one);
      },
      [&](const Status& refused, const zmq::message_t& header) { refuse_client_message(client, header, refused); });
}

void BrokerService::refuse_client_message(const std::string& client, const zmq::message_t& header,
                                          const Status& status) {
  log_refusal("client " + client + ": refused message: " + status.to_string());
  // A header of another version may still say which job it is (one over the limit is not read).
  // A refused CancelRequest gets no answer: a JobResult with its id would read as its job's answer.
  const bool readable = header.size() <= options_.limits.max_header_bytes;
  const core::RefusedHeader refused = readable ? core::read_refused_header(header) : core::RefusedHeader{};
  if (refused.body == wire::Body::CancelRequest) return;
  reply_error(client, refused.job_id, status);
}

void BrokerService::on_client_message(std::string client, const Caller& caller, int fd, const wire::Envelope& message,
                                      core::Frames& frames) {
  if (options_.secure && caller.tenant.empty() && !caller.is_operator) {
    log_refusal("client " + client + ": refused a message from key " + caller.key + ": not enrolled");
    if (message.body_type() == wire::Body::CancelRequest) return;
    return reply_error(
        client, core::read_refused_header(frames[1]).job_id,
        {StatusCode::kUnauthenticated,
         "this client's key " + caller.key + " is not listed for any tenant in " + options_.tenants_file +
             " (never enrolled, or revoked); ask the fleet's operator to add it under your tenant's keys"});
  }
  if (!bindings_.seen(client, fd, caller.key)) {
    log_refusal("client " + client + ": refused a message from key " + caller.key +
                ": its routing id is bound to another key");
    if (message.body_type() == wire::Body::CancelRequest) return;
    return reply_error(client, core::read_refused_header(frames[1]).job_id,
                       {StatusCode::kPermissionDenied,
                        "this connection's routing id belongs to another key that has jobs in the broker; connect "
                        "with a fresh random routing id (ZMQ_ROUTING_ID, 16 or more random bytes)"});
  }
  if (message.body_type() != wire::Body::JobRequest && frames.size() != 2) {
    log_refusal("client " + client + ": refused a " + wire::EnumNameBody(message.body_type()) + " with payload frames");
    if (message.body_type() == wire::Body::CancelRequest) return;
    return reply_error(client, core::read_refused_header(frames[1]).job_id,
                       {StatusCode::kMalformedMessage,
                        std::string("message ") + wire::EnumNameBody(message.body_type()) + " is one header frame; " +
                            std::to_string(frames.size() - 2) + " payload frames came with it"});
  }
  switch (message.body_type()) {
    case wire::Body::JobRequest: {
      core::Frames job_frames(std::make_move_iterator(frames.begin() + 1), std::make_move_iterator(frames.end()));
      // Points into job_frames[0], whose bytes do not move when the vector does.
      const auto* request = flatbuffers::GetRoot<wire::Envelope>(job_frames[0].data())->body_as_JobRequest();
      return handle_request(std::move(client), caller, std::move(job_frames), *request);
    }
    case wire::Body::CancelRequest: return handle_cancel(client, *message.body_as_CancelRequest());
    case wire::Body::StatusRequest: return handle_status(client, *message.body_as_StatusRequest());
    case wire::Body::QuotaRequest: return handle_quota(client, caller, *message.body_as_QuotaRequest());
    case wire::Body::ActorRequest: return handle_actor_show(client, caller, *message.body_as_ActorRequest());
    case wire::Body::Ping: return handle_ping(client, *message.body_as_Ping());
    default:
      return reply_error(client, 0,
                         {StatusCode::kMalformedMessage, std::string("a client may send JobRequest, "
                                                                     "CancelRequest, StatusRequest, "
                                                                     "QuotaRequest, ActorRequest or Ping, "
                                                                     "not ") +
                                                             wire::EnumNameBody(message.body_type())});
  }
}

}  // namespace bridge::broker
