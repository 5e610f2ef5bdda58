#pragma once
/// @file RedisConnection: a hiredis async connection driven by the broker's own poll loop.

#include <chrono>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "bridge/status.hpp"

struct redisAsyncContext;
struct redisReply;

namespace bridge::broker {

/// Where Redis is: parsed from "redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]" (USER: a Redis 6+ ACL user).
struct RedisAddress {
  std::string host = "127.0.0.1";
  int port = 6379;
  std::string user;
  std::string password;
  int db = 0;

  /// Throws core::ConfigError with the problem if `url` is not of the form above.
  static RedisAddress parse(const std::string& url);
  std::string to_string() const;  ///< without the password
};

/// One non-blocking connection. No thread of its own: the owner polls fd() for events() and calls
/// on_events() with what fired, and calls tick() regularly to reconnect (with backoff) after a loss.
/// Commands are pipelined: many may be outstanding, replies arrive in order. Not thread-safe: only
/// the owning loop thread may touch it. Connection state changes are logged once each, never per command.
class RedisConnection {
 public:
  /// Called once per command: with the reply, or with nullptr if the connection failed first;
  /// never once this RedisConnection is being destroyed.
  using ReplyHandler = std::function<void(const redisReply*)>;

  explicit RedisConnection(RedisAddress address);
  ~RedisConnection();
  RedisConnection(const RedisConnection&) = delete;
  RedisConnection& operator=(const RedisConnection&) = delete;

  bool connected() const { return connected_; }
  /// Why Redis refuses this connection's commands (out of memory, authentication, read-only
  /// replica, a failed save, still loading), from the first reply that said so; empty while it
  /// accepts them. Set by any refusing reply, cleared only by a successful probe_write().
  const std::string& refusal() const { return refusal_; }
  /// A write whose success shows that Redis accepts writes again (the broker's liveness SET).
  bool probe_write(const std::vector<std::string>& args);
  /// Sees every reply before its handler (called from the hiredis callback): a refusing error sets
  /// refusal(), logged once per change.
  void observe(const redisReply* reply);
  const RedisAddress& address() const { return address_; }

  /// Queues a command; false (and the handler is never called) if there is no connection.
  bool command(const std::vector<std::string>& args, ReplyHandler on_reply = nullptr);
  /// The same over views, for arguments that are slices of larger buffers (hiredis copies them).
  bool command_views(const std::vector<std::string_view>& args, ReplyHandler on_reply = nullptr);

  /// The socket to poll, or -1 while disconnected; and the ZMQ_POLLIN/ZMQ_POLLOUT it waits for.
  int fd() const;
  short events() const;
  void on_events(short revents);
  /// Starts a connection attempt when one is due.
  void tick(std::chrono::steady_clock::time_point now);

 private:
  static void on_connect(const redisAsyncContext* context, int status);
  static void on_disconnect(const redisAsyncContext* context, int status);
  void lost(const std::string& why);
  void connect();
  void set_refusal(std::string why);

  RedisAddress address_;
  redisAsyncContext* context_ = nullptr;  // owned by hiredis; freed by it on disconnect
  bool connected_ = false;
  bool want_read_ = false;
  bool want_write_ = false;
  bool reported_down_ = false;
  std::string refusal_;
  bool announce_ = false;  ///< connected, and "connected" not yet logged: waits for a reply that is no error
  std::chrono::milliseconds backoff_{0};
  std::chrono::steady_clock::time_point next_attempt_{};
};

}  // namespace bridge::broker
