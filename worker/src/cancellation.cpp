#include "bridge/worker/cancellation.hpp"

namespace bridge::worker {

void Cancellation::request(StatusCode code, std::string message) {
  std::function<void()> hook;
  {
    std::lock_guard lock(mutex_);
    if (requested_.load(std::memory_order_relaxed)) return;
    status_ = Status(code, std::move(message));
    requested_.store(true, std::memory_order_relaxed);
    hook = hook_;
  }
  stopped_.notify_all();
  if (hook) hook();
}

Status Cancellation::status() const {
  std::lock_guard lock(mutex_);
  return status_;
}

bool Cancellation::wait_for(std::chrono::nanoseconds duration) const {
  std::unique_lock lock(mutex_);
  return stopped_.wait_for(lock, duration, [this] { return requested_.load(std::memory_order_relaxed); });
}

void Cancellation::bind(std::function<void()> hook) {
  bool now = false;
  {
    std::lock_guard lock(mutex_);
    hook_ = hook;
    now = requested_.load(std::memory_order_relaxed);
  }
  if (now && hook) hook();
}

void Cancellation::unbind() {
  std::lock_guard lock(mutex_);
  hook_ = nullptr;
}

}  // namespace bridge::worker
