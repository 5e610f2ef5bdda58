#pragma once
/// @file RedisConnection: a hiredis async connection driven by the broker's own poll loop.

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "bridge/status.hpp"

struct redisAsyncContext;
struct redisReply;

namespace bridge::broker {

/// Where Redis is: parsed from "redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]" (USER: a Redis 6+ ACL
/// user), or, behind Redis Sentinel, "sentinel://[[USER]:PASSWORD@]HOST[:PORT][,HOST[:PORT]...]/MASTER[/DB]":
/// the sentinels (port 26379 by default) are asked where the master named MASTER is, and the
/// credentials and database are the master's.
struct RedisAddress {
  struct Node {
    std::string host;
    int port = 0;
  };
  std::string host = "127.0.0.1";
  int port = 6379;
  std::string user;
  std::string password;
  int db = 0;
  std::vector<Node> sentinels;  ///< non-empty: host and port are found through these
  std::string master_name;

  /// Throws core::ConfigError with the problem if `url` is not of the forms above.
  static RedisAddress parse(const std::string& url);
  bool sentinel() const { return !sentinels.empty(); }
  std::string to_string() const;  ///< without the password
};

/// One non-blocking connection. No thread of its own: the owner polls fd() for events() and calls
/// on_events() with what fired, and calls tick() regularly to reconnect (with backoff) after a loss.
/// Commands are pipelined: many may be outstanding, replies arrive in order. Not thread-safe: only
/// the owning loop thread may touch it. Connection state changes are logged once each, never per command.
///
/// Behind Sentinel, each connection attempt first asks the sentinels in turn for the master's
/// address (`SENTINEL get-master-addr-by-name`), then connects there and checks `ROLE` before any
/// other reply counts: a server that is not (or no longer) the master is left, and the sentinels
/// asked again. So is a master that answers READONLY (demoted under the connection). A fail-over is
/// therefore followed by reconnecting, as a Redis restart is.
class RedisConnection {
 public:
  /// Called once per command: with the reply, or with nullptr if the connection failed first;
  /// never once this RedisConnection is being destroyed.
  using ReplyHandler = std::function<void(const redisReply*)>;

  /// A connection with a command unanswered for `reply_timeout` is dropped (its commands answered
  /// nullptr) and made again: a frozen server or a cut link closes nothing by itself.
  explicit RedisConnection(RedisAddress address, std::chrono::milliseconds reply_timeout = std::chrono::seconds(5));
  ~RedisConnection();
  RedisConnection(const RedisConnection&) = delete;
  RedisConnection& operator=(const RedisConnection&) = delete;

  /// Connected, and behind Sentinel, to a server that says it is the master.
  bool connected() const { return connected_ && role_checked_; }
  /// Counts connections made: what one connection wrote, a WAIT on a later one cannot confirm.
  std::uint64_t generation() const { return generation_; }
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
  /// The server connected to, or last tried, as "HOST:PORT" (behind Sentinel: the master found).
  std::string server() const { return host_ + ":" + std::to_string(port_); }

  /// Queues a command; false (and the handler is never called) if there is no connection.
  bool command(const std::vector<std::string>& args, ReplyHandler on_reply = nullptr);
  /// The same over views, for arguments that are slices of larger buffers (hiredis copies them).
  bool command_views(const std::vector<std::string_view>& args, ReplyHandler on_reply = nullptr);

  /// The socket to poll, or -1 while disconnected; and the ZMQ_POLLIN/ZMQ_POLLOUT it waits for.
  int fd() const;
  short events() const;
  void on_events(short revents);
  /// Starts a connection attempt when one is due; drops one whose replies are overdue.
  void tick(std::chrono::steady_clock::time_point now);

 private:
  static void on_connect(const redisAsyncContext* context, int status);
  static void on_disconnect(const redisAsyncContext* context, int status);
  static void on_sentinel_reply(redisAsyncContext* context, void* reply, void* privdata);
  void lost(const std::string& why);
  void connect();
  /// A new async context to host:port, driven by this object's poll hooks; nullptr (and lost()) on failure.
  redisAsyncContext* open(const std::string& host, int port);
  /// Sentinel: asks the next sentinel for the master's address; the master is connected to once one answers.
  void ask_sentinel();
  /// The sentinel asked gave no usable answer (`why`): the next one is asked, or, all asked, lost().
  void sentinel_failed(const std::string& why);
  void set_refusal(std::string why);
  /// For logs: the URL, and behind Sentinel the master found.
  std::string describe() const;

  RedisAddress address_;
  std::string host_;  ///< the server connected to: address_.host, or the master a sentinel named
  int port_ = 0;
  redisAsyncContext* context_ = nullptr;  // owned by hiredis; freed by it on disconnect
  bool resolving_ = false;                ///< context_ is a sentinel's, asked for the master
  bool sentinel_answered_ = false;        ///< the sentinel asked replied (with the master, or an error)
  bool leaving_ = false;                  ///< disconnecting from a server that is not the master
  std::string not_master_;                ///< the last server found not to be the master (warned once)
  bool role_checked_ = true;              ///< behind Sentinel: ROLE said master on this connection
  std::size_t next_sentinel_ = 0;         ///< the sentinel to ask next
  std::size_t sentinels_failed_ = 0;      ///< in a row, this round
  std::string sentinel_errors_;           ///< what they said, for the log line once all failed
  std::chrono::steady_clock::time_point connect_deadline_{};  ///< an attempt not connected by then is dropped
  std::chrono::milliseconds reply_timeout_;
  /// The last reply, or the send that found nothing pending: replies pending for longer than
  /// reply_timeout_ since then mean the server or the link is gone.
  std::chrono::steady_clock::time_point last_progress_{};
  std::string drop_reason_;  ///< why tick() dropped the connection, for the disconnect that follows
  bool connected_ = false;
  std::uint64_t generation_ = 0;
  bool want_read_ = false;
  bool want_write_ = false;
  bool reported_down_ = false;
  std::string refusal_;
  bool announce_ = false;  ///< connected, and "connected" not yet logged: waits for a reply that is no error
  std::chrono::milliseconds backoff_{0};
  std::chrono::steady_clock::time_point next_attempt_{};
};

}  // namespace bridge::broker
