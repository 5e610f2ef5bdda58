#include "bridge/broker/redis_connection.hpp"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <zmq.h>

#include <memory>

#include <spdlog/spdlog.h>

#include "bridge/core/config_map.hpp"

namespace bridge::broker {
namespace {

constexpr std::chrono::milliseconds kMinBackoff{100};
constexpr std::chrono::milliseconds kMaxBackoff{5000};

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

RedisAddress RedisAddress::parse(const std::string& url) {
  constexpr std::string_view kScheme = "redis://";
  if (url.rfind(kScheme, 0) != 0)
    throw core::ConfigError("redis URL '" + url +
                            "' must start with redis:// (redis://[[USER]:PASSWORD@]HOST[:PORT][/DB])");
  RedisAddress a;
  std::string rest = url.substr(kScheme.size());
  if (const auto at = rest.rfind('@'); at != std::string::npos) {
    std::string credentials = rest.substr(0, at);
    rest = rest.substr(at + 1);
    const auto colon = credentials.find(':');
    if (colon == std::string::npos) {
      a.password = credentials;  // redis://PASSWORD@HOST, as redis-cli -u takes it
    } else {
      a.user = credentials.substr(0, colon);
      a.password = credentials.substr(colon + 1);
    }
  }
  if (const auto slash = rest.find('/'); slash != std::string::npos) {
    const std::string db = rest.substr(slash + 1);
    rest = rest.substr(0, slash);
    if (!db.empty()) {
      if (db.size() > 5 || db.find_first_not_of("0123456789") != std::string::npos || std::stoi(db) > 65535)
        throw core::ConfigError("redis URL '" + url + "': database '" + db + "' is not a number from 0 to 65535");
      a.db = std::stoi(db);
    }
  }
  if (const auto colon = rest.rfind(':'); colon != std::string::npos) {
    const std::string port = rest.substr(colon + 1);
    rest = rest.substr(0, colon);
    if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos ||
        std::stoi(port) < 1 || std::stoi(port) > 65535)
      throw core::ConfigError("redis URL '" + url + "': port '" + port + "' is not a number from 1 to 65535");
    a.port = std::stoi(port);
  }
  if (rest.empty()) throw core::ConfigError("redis URL '" + url + "' has no host");
  a.host = rest;
  return a;
}

std::string RedisAddress::to_string() const {
  return "redis://" + host + ":" + std::to_string(port) + "/" + std::to_string(db);
}

RedisConnection::RedisConnection(RedisAddress address) : address_(std::move(address)) {}

RedisConnection::~RedisConnection() {
  if (context_ != nullptr) {
    context_->data = nullptr;  // callbacks during the free must not reach this half-destroyed object
    redisAsyncFree(context_);
  }
}

void RedisConnection::connect() {
  redisAsyncContext* context = redisAsyncConnect(address_.host.c_str(), address_.port);
  if (context == nullptr) return lost("out of memory");
  if (context->err) {
    const std::string why = context->errstr;
    redisAsyncFree(context);
    return lost(why);
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
}

void RedisConnection::on_connect(const redisAsyncContext* context, int status) {
  RedisConnection* self = owner_of(context);
  if (self == nullptr) return;
  if (status != REDIS_OK) {
    self->context_ = nullptr;  // hiredis frees a context whose connect failed
    self->lost(context->errstr);
    return;
  }
  self->connected_ = true;
  self->reported_down_ = false;
  // The backoff is reset by the first reply that is not an error (observe): a server that takes the
  // connection and then closes it (a wrong password, with the default user off) is retried with
  // backoff, not ten times a second. While Redis refuses the broker, each cycle is a debug line.
  // Said at the first reply that is not an error (observe): a connection whose password is refused
  // is not one to announce.
  self->announce_ = true;
  spdlog::debug("redis: connected to {}{}", self->address_.to_string(),
                self->refusal_.empty() ? "" : " (it refused the broker before: " + self->refusal_ + ")");
}

void RedisConnection::on_disconnect(const redisAsyncContext* context, int status) {
  RedisConnection* self = owner_of(context);
  if (self == nullptr) return;
  self->context_ = nullptr;
  self->lost(status == REDIS_OK ? "closed" : context->errstr);
}

void RedisConnection::lost(const std::string& why) {
  const bool was_connected = connected_;
  connected_ = false;
  want_read_ = want_write_ = false;
  if (was_connected && !refusal_.empty()) {
    spdlog::debug("redis: {} closed the connection ({}), as it refuses the broker: {}", address_.to_string(), why,
                  refusal_);
  } else if (was_connected) {
    spdlog::error("redis: lost connection to {}: {}; reconnecting", address_.to_string(), why);
  } else if (!reported_down_) {
    spdlog::error("redis: cannot connect to {}: {}; retrying with backoff", address_.to_string(), why);
  }
  reported_down_ = true;
  backoff_ = std::clamp(backoff_ * 2, kMinBackoff, kMaxBackoff);
  next_attempt_ = std::chrono::steady_clock::now() + backoff_;
}

void RedisConnection::tick(std::chrono::steady_clock::time_point now) {
  if (context_ == nullptr && now >= next_attempt_) connect();
}

bool RedisConnection::command(const std::vector<std::string>& args, ReplyHandler on_reply_handler) {
  return command_views(std::vector<std::string_view>(args.begin(), args.end()), std::move(on_reply_handler));
}

bool RedisConnection::command_views(const std::vector<std::string_view>& args, ReplyHandler on_reply_handler) {
  if (!connected_ || context_ == nullptr) return false;
  std::vector<const char*> argv;
  std::vector<std::size_t> lengths;
  argv.reserve(args.size());
  lengths.reserve(args.size());
  for (const auto& a : args) {
    argv.push_back(a.data());
    lengths.push_back(a.size());
  }
  auto handler = std::make_unique<ReplyHandler>(std::move(on_reply_handler));
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
  if (reply != nullptr && reply->type != REDIS_REPLY_ERROR) {
    backoff_ = std::chrono::milliseconds(0);
    if (announce_) spdlog::info("redis: connected to {}", address_.to_string());
    announce_ = false;
  }
  if (reply == nullptr || reply->type != REDIS_REPLY_ERROR) return;
  const std::string_view error(reply->str, reply->len);
  if (is_refusal(error)) set_refusal(std::string(error));
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
    spdlog::info("redis: {} accepts the broker's commands again", address_.to_string());
  } else {
    spdlog::error(
        "redis: {} refuses the broker's commands: {}; jobs are answered UNAVAILABLE and /readyz says "
        "not ready until it accepts them (logged once; the next line says when it does){}",
        address_.to_string(), why,
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
