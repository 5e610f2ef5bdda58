#include "bridge/broker/replica_wait.hpp"

#include <hiredis/hiredis.h>

#include <algorithm>
#include <string>

#include <spdlog/spdlog.h>

namespace bridge::broker {

void ReplicaWait::add(Confirmed done) {
  pending_.push_back({std::move(done), redis_.generation()});
  ask(std::chrono::steady_clock::now());
}

void ReplicaWait::tick(std::chrono::steady_clock::time_point now) { ask(now); }

void ReplicaWait::ask(std::chrono::steady_clock::time_point now) {
  if (in_flight_) return;
  give_up(/*all=*/false);  // a WAIT on this connection says nothing of another's writes
  if (pending_.empty() || now < next_ask_) return;
  const std::size_t covered = pending_.size();
  const bool sent =
      redis_.command({"WAIT", std::to_string(options_.replicas), std::to_string(options_.timeout.count())},
                     [this, covered](const redisReply* reply) {
                       in_flight_ = false;
                       if (reply == nullptr) return give_up(/*all=*/true);
                       on_reply(covered, reply->type == REDIS_REPLY_INTEGER ? reply->integer : -1,
                                reply->type == REDIS_REPLY_ERROR ? reply->str : nullptr);
                     });
  if (!sent) return give_up(/*all=*/true);
  in_flight_ = true;
}

void ReplicaWait::on_reply(std::size_t covered, long long replicas, const char* error) {
  if (replicas >= static_cast<long long>(options_.replicas)) {
    if (std::exchange(short_, false))
      spdlog::info("redis: actor writes are confirmed by redis_wait_replicas ({}) replicas again", options_.replicas);
    backoff_ = std::chrono::milliseconds(0);
    for (std::size_t i = 0; i < covered && !pending_.empty(); ++i) {
      Pending done = std::move(pending_.front());
      pending_.pop_front();
      done.done(true);
    }
    return ask(std::chrono::steady_clock::now());
  }
  if (!std::exchange(short_, true))
    spdlog::warn(
        "redis: actor writes were confirmed by {} within {} ms, fewer than redis_wait_replicas ({}); their calls "
        "wait, holding their actors' turns, until enough replicas are back (logged once; the next line says when)",
        error != nullptr ? std::string(error) : std::to_string(replicas) + " replicas", options_.timeout.count(),
        options_.replicas);
  backoff_ = std::clamp(backoff_ * 2, std::chrono::milliseconds(10), std::chrono::milliseconds(1000));
  next_ask_ = std::chrono::steady_clock::now() + backoff_;
}

void ReplicaWait::give_up(bool all) {
  std::deque<Pending> kept, dropped;
  for (Pending& p : pending_) (!all && p.generation == redis_.generation() ? kept : dropped).push_back(std::move(p));
  pending_ = std::move(kept);
  for (Pending& p : dropped) p.done(false);
}

}  // namespace bridge::broker
