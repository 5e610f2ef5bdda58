#pragma once
/// @file ClientBindings: which key each client routing id belongs to, so that results go only to the
/// key that sent the request, whatever routing id a later socket claims.

#include <cstddef>
#include <string>
#include <unordered_map>

namespace bridge::broker {

/// A ROUTER addresses a client by the routing id the client chose, and a new socket may claim the id
/// of one that left. libzmq (4.3) tells the broker neither the routing id at authentication (the ZAP
/// request carries the server's own) nor when a routing id disconnects (ZMQ_ROUTER_NOTIFY is a draft
/// API), so this joins what it does tell: each message's key (the ZAP user id) and descriptor
/// (ZMQ_SRCFD), and the monitor's disconnects by descriptor.
///
/// - A routing id is bound to the key of the first message on it; while that key has jobs in the
///   broker the binding stays, and messages on the id from another key are refused.
/// - A result is sent only while the id's connection is the one the binding was made on, or a later
///   one that sent a message with the same key. After a disconnect, results wait for the client to
///   speak again on a new connection (the C++ client pings when it reconnects); until then they are
///   not sent, so a socket that claims the id in silence receives nothing.
///
/// Loop thread only; no sockets, unit-tested on its own.
class ClientBindings {
 public:
  /// A message from routing id `client` on connection `fd`, authenticated as `key`. false: the id
  /// is bound to another key that still has jobs here; refuse the message.
  bool seen(const std::string& client, int fd, const std::string& key);
  /// The connection on `fd` closed.
  void disconnected(int fd);
  /// A job of `client` was accepted / has ended: a binding with jobs outlives its connection.
  void job_added(const std::string& client);
  void job_ended(const std::string& client);
  /// Whether an answer to a job `key` sent from `client` may be sent to `client` now.
  bool deliverable(const std::string& client, const std::string& key) const;

  std::size_t size() const { return by_client_.size(); }

 private:
  struct Binding {
    std::string key;
    int fd = -1;        ///< -1: its connection closed and no message has come on a new one
    std::size_t jobs = 0;
  };
  void erase_if_idle(std::unordered_map<std::string, Binding>::iterator it);

  std::unordered_map<std::string, Binding> by_client_;
  std::unordered_map<int, std::string> client_on_fd_;
};

}  // namespace bridge::broker
