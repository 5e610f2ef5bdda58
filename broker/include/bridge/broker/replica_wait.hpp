#pragma once
/// @file ReplicaWait: writes acknowledged only once enough replicas have them (Redis WAIT).

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>

#include "bridge/broker/redis_connection.hpp"

namespace bridge::broker {

/// A write on the master is acknowledged once `replicas` replicas have it, so that a fail-over
/// cannot lose it (Sentinel promotes a replica that has it). WAIT counts the replicas holding every
/// write this connection made before it, so one WAIT answers for all the writes added so far; it
/// holds the connection for at most `timeout`. Short of replicas, it is asked again with backoff
/// (10 ms doubling to 1 s), logged once, and the writes wait. Loop-thread only, like RedisConnection.
class ReplicaWait {
 public:
  struct Options {
    std::uint32_t replicas = 0;  ///< 0: off; every write is acknowledged at once
    std::chrono::milliseconds timeout{50};
  };
  /// true: the replicas have it. false: the connection went first (or a later connection is up),
  /// so whether the write survives a fail-over is unknown until Redis is read again.
  using Confirmed = std::function<void(bool confirmed)>;

  ReplicaWait(RedisConnection& redis, Options options) : redis_(redis), options_(options) {}

  bool enabled() const { return options_.replicas > 0; }
  /// A write just committed on the connection as it is now.
  void add(Confirmed done);
  /// Asks again when it is due. Call regularly (the broker's timers).
  void tick(std::chrono::steady_clock::time_point now);

 private:
  struct Pending {
    Confirmed done;
    std::uint64_t generation = 0;  ///< of the connection that wrote it
  };
  void ask(std::chrono::steady_clock::time_point now);
  void on_reply(std::size_t covered, long long replicas, const char* error);
  /// Answers false for the writes of earlier connections (all of them, with `all`).
  void give_up(bool all);

  RedisConnection& redis_;
  Options options_;
  std::deque<Pending> pending_;  ///< in write order
  bool in_flight_ = false;
  std::chrono::milliseconds backoff_{0};
  std::chrono::steady_clock::time_point next_ask_{};
  bool short_ = false;  ///< said in the log; said again once confirmed
};

}  // namespace bridge::broker
