#pragma once
/// @file CircuitBreaker: stops using a failing device for a while.

#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>

namespace bridge::worker {

/// Counts device failures in a sliding window. After `failures` of them within `window`, the circuit
/// opens: the device is not used for `cooldown`, after which one trial is allowed (half-open); a
/// success closes the circuit, a failure opens it again. Thread-safe.
class CircuitBreaker {
 public:
  using Clock = std::chrono::steady_clock;

  struct Options {
    std::uint32_t failures = 3;
    std::chrono::milliseconds window{10000};
    std::chrono::milliseconds cooldown{30000};
  };

  explicit CircuitBreaker(Options options) : options_(options) {}

  /// Whether the device may be used now. In the half-open state only one caller gets true.
  bool allow(Clock::time_point now = Clock::now());
  void record_success();
  /// Records a failure; returns true if this failure opened the circuit.
  bool record_failure(Clock::time_point now = Clock::now());
  /// True while the device is not to be used (open, cooldown not over).
  bool is_open(Clock::time_point now = Clock::now()) const;
  /// "GPU disabled until ..." style explanation for fallback reasons and logs.
  std::string describe(Clock::time_point now = Clock::now()) const;

 private:
  Options options_;
  mutable std::mutex mutex_;
  std::uint32_t recent_failures_ = 0;
  Clock::time_point window_start_{};
  Clock::time_point open_until_{};
  bool open_ = false;
  bool trial_in_flight_ = false;
};

}  // namespace bridge::worker
