#include "bridge/worker/circuit_breaker.hpp"

namespace bridge::worker {

bool CircuitBreaker::allow(Clock::time_point now) {
  std::lock_guard lock(mutex_);
  if (!open_) return true;
  if (now < open_until_ || trial_in_flight_) return false;
  trial_in_flight_ = true;  // half-open: exactly one trial
  return true;
}

void CircuitBreaker::record_success() {
  std::lock_guard lock(mutex_);
  open_ = false;
  trial_in_flight_ = false;
  recent_failures_ = 0;
}

bool CircuitBreaker::record_failure(Clock::time_point now) {
  std::lock_guard lock(mutex_);
  if (open_) {
    // The half-open trial failed: back to a full cooldown.
    trial_in_flight_ = false;
    open_until_ = now + options_.cooldown;
    return false;
  }
  if (recent_failures_ == 0 || now - window_start_ > options_.window) {
    window_start_ = now;
    recent_failures_ = 0;
  }
  if (++recent_failures_ < options_.failures) return false;
  open_ = true;
  open_until_ = now + options_.cooldown;
  recent_failures_ = 0;
  return true;
}

bool CircuitBreaker::is_open(Clock::time_point now) const {
  std::lock_guard lock(mutex_);
  return open_ && (now < open_until_ || trial_in_flight_);
}

std::string CircuitBreaker::describe(Clock::time_point now) const {
  std::lock_guard lock(mutex_);
  if (!open_) return "GPU in service";
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(open_until_ - now).count();
  return "GPU disabled by the circuit breaker after " + std::to_string(options_.failures) + " failures within " +
         std::to_string(options_.window.count()) + " ms; next trial in " + std::to_string(left > 0 ? left : 0) + " ms";
}

}  // namespace bridge::worker
