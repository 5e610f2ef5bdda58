#pragma once
/// @file BrokerWatch: when a client asks its broker who it is (Ping), and when it leaves a silent
/// broker for the next one in its list. No sockets and no clock of its own, so that it is tested
/// on its own (tests/unit/broker_watch_test.cpp). Internal to libgpubridge.

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace bridge::core {

/// "tcp://a:5555, tcp://b:5555" -> its endpoints, trimmed. Throws ConfigError for an empty list or entry.
std::vector<std::string> parse_broker_list(std::string_view list);

class BrokerWatch {
 public:
  using Clock = std::chrono::steady_clock;
  enum class Action { kNone, kPing, kMove };

  /// `check`: broker_check (0: never ping, never move). `first`: the index to start from (spread
  /// clients across the brokers). `now`: when the client connected.
  BrokerWatch(std::vector<std::string> brokers, std::chrono::milliseconds check, std::size_t first,
              Clock::time_point now);

  /// Anything from the broker: it is alive.
  void heard(Clock::time_point now) {
    last_heard_ = now;
    asking_ = false;
  }
  /// A Pong: the broker's incarnation is known, so a busy broker need not be pinged for a while.
  void known(Clock::time_point now) {
    known_ = true;
    confirmed_ = now;
  }
  /// A new connection with work pending: ping at the next call of due().
  void ping_soon() { ping_soon_ = true; }
  /// What to do now, with requests waiting or not. kPing: ask the broker (then pinged()). kMove:
  /// requests wait, there is another broker, and this one has been silent for two checks and has
  /// not answered a Ping in one (then move()).
  Action due(Clock::time_point now, bool work_pending);
  void pinged(Clock::time_point now) {
    next_ping_ = now + check_;
    if (!std::exchange(asking_, true)) asked_since_ = now;
  }
  /// Moves to the next broker in the list; returns it.
  const std::string& move(Clock::time_point now);

  const std::string& current() const { return brokers_[current_]; }
  const std::vector<std::string>& brokers() const { return brokers_; }

 private:
  std::vector<std::string> brokers_;
  std::chrono::milliseconds check_;
  std::size_t current_;
  Clock::time_point last_heard_;  ///< or when the client came to this broker
  Clock::time_point next_ping_{};
  bool asking_ = false;  ///< a Ping is unanswered (nothing heard since), since asked_since_
  Clock::time_point asked_since_{};
  bool known_ = false;
  Clock::time_point confirmed_{};  ///< the last Pong
  bool ping_soon_ = false;
  /// A busy broker is asked again this many checks after its last Pong all the same (due()).
  static constexpr int kReconfirmChecks = 5;
};

}  // namespace bridge::core
