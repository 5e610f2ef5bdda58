#pragma once
/// @file ThrottledLog: at most one log line per period for an event any client can cause at will.

#include <chrono>
#include <cstdint>

namespace bridge::broker {

/// A client can send refused messages as fast as the broker reads them; a line for each would let
/// it flood the log (and the disk) of a fleet it shares. The first occurrence in a period is
/// logged, with how many were held back since the line before; the rest go to debug only.
class ThrottledLog {
 public:
  using Clock = std::chrono::steady_clock;
  explicit ThrottledLog(std::chrono::milliseconds period = std::chrono::seconds(10)) : period_(period) {}

  /// True: log this occurrence at its level, saying `held_back` were not (since the last line).
  /// False: log it at debug only.
  bool take(Clock::time_point now, std::uint64_t& held_back) {
    if (logged_ && now < next_) {
      ++held_back_;
      return false;
    }
    logged_ = true;
    next_ = now + period_;
    held_back = held_back_;
    held_back_ = 0;
    return true;
  }

 private:
  std::chrono::milliseconds period_;
  bool logged_ = false;
  Clock::time_point next_{};
  std::uint64_t held_back_ = 0;
};

}  // namespace bridge::broker
