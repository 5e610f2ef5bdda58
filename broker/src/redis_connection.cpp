#include "bridge/broker/redis_connection.hpp"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <zmq.h>

#include <cstdlib>
#include <memory>

#include <spdlog/spdlog.h>

#include "bridge/core/config_map.hpp"

namespace bridge::broker {
namespace {

constexpr std::chrono::milliseconds kMinBackoff{100};
constexpr std::chrono::milliseconds kMaxBackoff{5000};
// A connection attempt, or a sentinel's answer, not there by then is given up (and the next tried).
constexpr std::chrono::milliseconds kConnectTimeout{2000};

RedisConnection* owner_of(const redisAsyncContext* context) { return static_cast<RedisConnection*>(context->data); }

// Errors that mean Redis refuses the fleet's commands as a whole, not one command's arguments.
bool is_refusal(std::string_view error) {
  for (std::string_view prefix :
       {"OOM", "NOAUTH", "WRONGPASS", "NOPERM", "READONLY", "MISCONF", "LOADING", "MASTERDOWN"})
    if (error.substr(0, prefix.size()) == prefix) return true;
  return false;
}

void on_reply(redisAsyncContext* context, void* reply, void* privdata) {
  std::unique_ptr<RedisConnection::ReplyHandler> handler(static_cast<RedisConnection::ReplyHandler*>(privdata));
  // context->data is cleared when the owner is being destroyed: its handlers' targets may be gone.
  if (context->data == nullptr) return;
  owner_of(context)->observe(static_cast<const redisReply*>(reply));
  if (handler && *handler) (*handler)(static_cast<const redisReply*>(reply));
}

}  // namespace

RedisConnection::RedisConnection(RedisAddress address, std::chrono::milliseconds reply_timeout)
    : address_(std::move(address)), host_(address_.host), port_(address_.port), reply_timeout_(reply_timeout) {}

RedisConnection::~RedisConnection() {
  if (context_ != nullptr) {
    context_->data = nullptr;  // callbacks during the free must not reach this half-destroyed object
    redisAsyncFree(context_);
  }
}

redisAsyncContext* RedisConnection::open(const std::string& host, int port) {
  redisAsyncContext* context = redisAsyncConnect(host.c_str(), port);
  if (context == nullptr) {
    lost("out of memory");
    return nullptr;
  }
  if (context->err) {
    const std::string why = context->errstr;
    redisAsyncFree(context);
    lost(why);
    return nullptr;
  }
  context_ = context;
  context->data = this;
  context->ev.data = this;
  context->ev.addRead = [](void* self) { static_cast<RedisConnection*>(self)->want_read_ = true; };
  context->ev.delRead = [](void* self) { static_cast<RedisConnection*>(self)->want_read_ = false; };
  context->ev.addWrite = [](void* self) { static_cast<RedisConnection*>(self)->want_write_ = true; };
  context->ev.delWrite = [](void* self) { static_cast<RedisConnection*>(self)->want_write_ = false; };
  context->ev.cleanup = [](void* self) {
    auto* me = static_cast<RedisConnection*>(self);
    me->want_read_ = me->want_write_ = false;
  };
  redisAsyncSetConnectCallback(context, &RedisConnection::on_connect);
  redisAsyncSetDisconnectCallback(context, &RedisConnection::on_disconnect);
  connect_deadline_ = std::chrono::steady_clock::now() + kConnectTimeout;
  return context;
}

void RedisConnection::connect() {
  if (address_.sentinel() && !resolving_ && host_.empty()) return ask_sentinel();
  redisAsyncContext* context = open(host_, port_);
  if (context == nullptr) return;
  // Queued now, sent first once the connection is up.
  // Their replies pass through observe(): a wrong password or user is a refusal, logged once.
  if (!address_.password.empty()) {
    if (address_.user.empty()) {
      const char* argv[] = {"AUTH", address_.password.c_str()};
      redisAsyncCommandArgv(context, on_reply, nullptr, 2, argv, nullptr);
    } else {
      const char* argv[] = {"AUTH", address_.user.c_str(), address_.password.c_str()};
      redisAsyncCommandArgv(context, on_reply, nullptr, 3, argv, nullptr);
    }
  }
  if (address_.db != 0) {
    const std::string db = std::to_string(address_.db);
    const char* argv[] = {"SELECT", db.c_str()};
    redisAsyncCommandArgv(context, on_reply, nullptr, 2, argv, nullptr);
  }
  role_checked_ = !address_.sentinel();
  if (role_checked_) return;
  // The sentinel's answer may be stale (a fail-over in progress): only a server that says it is the
  // master is used; until then connected() is false and no command is taken.
  const char* argv[] = {"ROLE"};
  redisAsyncCommandArgv(
      context,
      [](redisAsyncContext* c, void* r, void*) {
        RedisConnection* self = owner_of(c);
        const auto* reply = static_cast<const redisReply*>(r);
        if (self == nullptr || reply == nullptr) return;
        if (reply->type == REDIS_REPLY_ARRAY && reply->elements > 0 && reply->element[0]->type == REDIS_REPLY_STRING &&
            std::string_view(reply->element[0]->str, reply->element[0]->len) == "master") {
          self->role_checked_ = true;
          self->not_master_.clear();
          return;
        }
        const std::string role =
            reply->type == REDIS_REPLY_ARRAY && reply->elements > 0 && reply->element[0]->type == REDIS_REPLY_STRING
                ? std::string(reply->element[0]->str, reply->element[0]->len)
                : std::string(reply->type == REDIS_REPLY_ERROR ? reply->str : "no answer");
        // Said once per server: the sentinels may name it again on every retry of a fail-over.
        const bool again = self->not_master_ == self->server();
        spdlog::log(again ? spdlog::level::debug : spdlog::level::warn,
                    "redis: {} is not the master of '{}' (ROLE: {}); asking the sentinels again", self->server(),
                    self->address_.master_name, role);
        self->not_master_ = self->server();
        self->leaving_ = true;  // the disconnect that follows is not news
        redisAsyncDisconnect(c);
      },
      nullptr, 1, argv, nullptr);
}

void RedisConnection::ask_sentinel() {
  const RedisAddress::Node& sentinel = address_.sentinels[next_sentinel_ % address_.sentinels.size()];
  next_sentinel_ = (next_sentinel_ + 1) % address_.sentinels.size();
  resolving_ = true;
  sentinel_answered_ = false;
  host_.clear();
  redisAsyncContext* context = open(sentinel.host, sentinel.port);
  if (context == nullptr) {
    resolving_ = false;
    return;
  }
  const char* argv[] = {"SENTINEL", "get-master-addr-by-name", address_.master_name.c_str()};
  redisAsyncCommandArgv(context, on_sentinel_reply, nullptr, 3, argv, nullptr);
}

void RedisConnection::on_sentinel_reply(redisAsyncContext* context, void* reply_ptr, void*) {
  RedisConnection* self = owner_of(context);
  const auto* reply = static_cast<const redisReply*>(reply_ptr);
  if (self == nullptr || reply == nullptr) return;  // the context is going: its end says why
  self->sentinel_answered_ = true;
  const std::string sentinel = std::string(context->c.tcp.host) + ":" + std::to_string(context->c.tcp.port);
  const auto port = reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 &&
                            reply->element[0]->type == REDIS_REPLY_STRING && reply->element[0]->len > 0 &&
                            reply->element[1]->type == REDIS_REPLY_STRING && reply->element[1]->len <= 5
                        ? std::atoi(std::string(reply->element[1]->str, reply->element[1]->len).c_str())
                        : 0;
  if (port >= 1 && port <= 65535) {
    self->host_.assign(reply->element[0]->str, reply->element[0]->len);
    self->port_ = port;
    spdlog::debug("redis: sentinel {} says master '{}' is at {}", sentinel, self->address_.master_name, self->server());
  } else {
    const std::string why = reply->type == REDIS_REPLY_ERROR ? std::string(reply->str, reply->len)
                            : reply->type == REDIS_REPLY_NIL
                                ? "does not know master '" + self->address_.master_name + "'"
                                : std::string("answered no usable address");
    self->sentinel_errors_ += (self->sentinel_errors_.empty() ? "" : "; ") + sentinel + ": " + why;
  }
  redisAsyncDisconnect(context);  // on_disconnect goes on: to the master, or to the next sentinel
}

void RedisConnection::sentinel_failed(const std::string& why) {
  resolving_ = false;
  host_.clear();
  if (!why.empty()) {
    const RedisAddress::Node& asked =
        address_.sentinels[(next_sentinel_ + address_.sentinels.size() - 1) % address_.sentinels.size()];
    sentinel_errors_ +=
        (sentinel_errors_.empty() ? "" : "; ") + asked.host + ":" + std::to_string(asked.port) + ": " + why;
  }
  if (++sentinels_failed_ < address_.sentinels.size()) {
    next_attempt_ = std::chrono::steady_clock::now();  // the next sentinel, at once
    return;
  }
  sentinels_failed_ = 0;
  lost("no sentinel gave the address of master '" + address_.master_name + "' (" + std::exchange(sentinel_errors_, {}) +
       ")");
}

void RedisConnection::on_connect(const redisAsyncContext* context, int status) {
  RedisConnection* self = owner_of(context);
  if (self == nullptr) return;
  if (status != REDIS_OK) {
    self->context_ = nullptr;  // hiredis frees a context whose connect failed
    if (self->resolving_) return self->sentinel_failed(context->errstr);
    self->lost(context->errstr);
    return;
  }
  if (self->resolving_) return;  // the question is queued: on_sentinel_reply follows
  self->connected_ = true;
  ++self->generation_;
  self->last_progress_ = std::chrono::steady_clock::now();
  self->reported_down_ = false;
  // The backoff is reset by the first reply that is not an error (observe): a server that takes the
  // connection and then closes it (a wrong password, with the default user off) is retried with
  // backoff, not ten times a second. While Redis refuses the broker, each cycle is a debug line.
  // Said at the first reply that is not an error (observe): a connection whose password is refused
  // is not one to announce.
  self->announce_ = true;
  spdlog::debug("redis: connected to {}{}", self->describe(),
                self->refusal_.empty() ? "" : " (it refused the broker before: " + self->refusal_ + ")");
}

void RedisConnection::on_disconnect(const redisAsyncContext* context, int status) {
  RedisConnection* self = owner_of(context);
  if (self == nullptr) return;
  self->context_ = nullptr;
  if (self->resolving_) {
    self->resolving_ = false;
    if (self->host_.empty())
      return self->sentinel_failed(self->sentinel_answered_ ? ""
                                   : status != REDIS_OK     ? std::string(context->errstr)
                                                            : "closed the connection without an answer");
    self->sentinels_failed_ = 0;
    self->sentinel_errors_.clear();
    self->connect();  // the master the sentinel named, at once
    return;
  }
  const std::string dropped = std::exchange(self->drop_reason_, {});
  self->lost(!dropped.empty() ? dropped : status == REDIS_OK ? "closed" : context->errstr);
}

void RedisConnection::lost(const std::string& why) {
  const bool was_connected = connected_;
  connected_ = false;
  want_read_ = want_write_ = false;
  const bool leaving = std::exchange(leaving_, false);
  if (leaving) {  // left on purpose (not the master): said already
    spdlog::debug("redis: left {} ({})", describe(), why);
  } else if (was_connected && !refusal_.empty()) {
    spdlog::debug("redis: {} closed the connection ({}), as it refuses the broker: {}", describe(), why, refusal_);
  } else if (was_connected) {
    spdlog::error("redis: lost connection to {}: {}; reconnecting", describe(), why);
  } else if (!reported_down_) {
    spdlog::error("redis: cannot connect to {}: {}; retrying with backoff", describe(), why);
  }
  if (!leaving) reported_down_ = true;
  if (address_.sentinel()) host_.clear();  // ask the sentinels again: the master may have moved
  backoff_ = std::clamp(backoff_ * 2, kMinBackoff, kMaxBackoff);
  next_attempt_ = std::chrono::steady_clock::now() + backoff_;
}

void RedisConnection::tick(std::chrono::steady_clock::time_point now) {
  if (context_ == nullptr) {
    if (now >= next_attempt_) connect();
    return;
  }
  // An attempt that neither connects nor fails (a host that drops packets; a sentinel that never
  // answers) is dropped at its deadline. Its callbacks are cut off first: nothing was asked of it
  // that a caller waits for (commands are taken only once connected).
  const bool waiting = resolving_ || !connected_;
  if (!waiting && context_->replies.head != nullptr && now - last_progress_ > reply_timeout_) {
    // Replies overdue on an open connection: a frozen server, or a link that drops packets. The
    // pending commands are answered nullptr (their callers see the connection gone), and the next
    // attempt asks the sentinels again.
    drop_reason_ = "no reply within " + std::to_string(reply_timeout_.count()) + " ms (redis_reply_timeout_ms)";
    redisAsyncContext* context = std::exchange(context_, nullptr);
    redisAsyncFree(context);  // pending callbacks with nullptr, then on_disconnect
    if (!drop_reason_.empty()) lost(std::exchange(drop_reason_, {}));  // no disconnect callback came
    return;
  }
  if (!waiting || now < connect_deadline_) return;
  redisAsyncContext* context = std::exchange(context_, nullptr);
  context->data = nullptr;
  redisAsyncFree(context);
  want_read_ = want_write_ = false;
  if (resolving_) return sentinel_failed("no answer within " + std::to_string(kConnectTimeout.count()) + " ms");
  lost("not connected within " + std::to_string(kConnectTimeout.count()) + " ms");
}

std::string RedisConnection::describe() const {
  if (!address_.sentinel()) return address_.to_string();
  return address_.to_string() + (host_.empty() ? "" : " (master at " + server() + ")");
}

bool RedisConnection::command(const std::vector<std::string>& args, ReplyHandler on_reply_handler) {
  return command_views(std::vector<std::string_view>(args.begin(), args.end()), std::move(on_reply_handler));
}

bool RedisConnection::command_views(const std::vector<std::string_view>& args, ReplyHandler on_reply_handler) {
  if (!connected() || context_ == nullptr) return false;
  std::vector<const char*> argv;
  std::vector<std::size_t> lengths;
  argv.reserve(args.size());
  lengths.reserve(args.size());
  for (const auto& a : args) {
    argv.push_back(a.data());
    lengths.push_back(a.size());
  }
  auto handler = std::make_unique<ReplyHandler>(std::move(on_reply_handler));
  if (context_->replies.head == nullptr) last_progress_ = std::chrono::steady_clock::now();  // the wait starts
  if (redisAsyncCommandArgv(context_, on_reply, handler.get(), static_cast<int>(args.size()), argv.data(),
                            lengths.data()) != REDIS_OK)
    return false;
  handler.release();  // owned by hiredis until on_reply
  return true;
}

bool RedisConnection::probe_write(const std::vector<std::string>& args) {
  return command(args, [this](const redisReply* reply) {
    if (reply != nullptr && reply->type != REDIS_REPLY_ERROR) set_refusal({});
  });
}

void RedisConnection::observe(const redisReply* reply) {
  last_progress_ = std::chrono::steady_clock::now();
  if (reply != nullptr && reply->type != REDIS_REPLY_ERROR) {
    backoff_ = std::chrono::milliseconds(0);
    if (announce_) spdlog::info("redis: connected to {}", describe());
    announce_ = false;
  }
  if (reply == nullptr || reply->type != REDIS_REPLY_ERROR) return;
  const std::string_view error(reply->str, reply->len);
  if (is_refusal(error)) set_refusal(std::string(error));
  // Behind Sentinel, a master demoted under this connection answers writes READONLY: leave it once
  // the replies already asked for are in, and ask the sentinels where the master is now.
  if (address_.sentinel() && error.substr(0, 8) == "READONLY" && context_ != nullptr) redisAsyncDisconnect(context_);
}

void RedisConnection::set_refusal(std::string why) {
  // One state per kind of refusal (its first word: OOM, NOAUTH, ...): the same refusal reaches
  // scripts and plain commands in different words, and is logged once.
  // A wrong password and the NOAUTH of every command after it are one refusal: authentication.
  auto kind = [](const std::string& error) {
    std::string word = error.substr(0, error.find(' '));
    return word == "NOAUTH" || word == "WRONGPASS" ? std::string("authentication") : word;
  };
  if (kind(why) == kind(refusal_) && why.empty() == refusal_.empty()) return;
  if (why.empty()) {
    spdlog::info("redis: {} accepts the broker's commands again", describe());
  } else {
    spdlog::error(
        "redis: {} refuses the broker's commands: {}; jobs are answered UNAVAILABLE and /readyz says "
        "not ready until it accepts them (logged once; the next line says when it does){}",
        describe(), why,
        kind(why) == "authentication"
            ? std::string(address_.user.empty() ? "; check the password (no ACL user is given)"
                                                : "; check the password of ACL user '" + address_.user + "'") +
                  " (redis URL, redis_password_file or GPUBRIDGE_REDIS_PASSWORD)"
            : std::string());
  }
  refusal_ = std::move(why);
}

int RedisConnection::fd() const { return context_ == nullptr ? -1 : context_->c.fd; }

short RedisConnection::events() const {
  return static_cast<short>((want_read_ ? ZMQ_POLLIN : 0) | (want_write_ ? ZMQ_POLLOUT : 0));
}

void RedisConnection::on_events(short revents) {
  // Either handler may free the context (on error), so re-check it between the two.
  if (context_ != nullptr && (revents & (ZMQ_POLLIN | ZMQ_POLLERR))) redisAsyncHandleRead(context_);
  if (context_ != nullptr && (revents & ZMQ_POLLOUT)) redisAsyncHandleWrite(context_);
}

}  // namespace bridge::broker
