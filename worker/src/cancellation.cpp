#include "bridge/worker/cancellation.hpp"

namespace bridge::worker {

void Cancellation::request(StatusCode code, std::string message) {
  {
    std::lock_guard lock(mutex_);
    if (requested_.load(std::memory_order_relaxed)) return;
    status_ = Status(code, std::move(message));
    requested_.store(true, std::memory_order_relaxed);
    // Under the lock: unbind() waits for it, so what the hook touches (the job's task group
    // context, on the backend thread's stack) cannot be gone while it runs.
    if (hook_) hook_();
  }
  stopped_.notify_all();
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
  std::lock_guard lock(mutex_);
  hook_ = std::move(hook);
  if (requested_.load(std::memory_order_relaxed) && hook_) hook_();
}

void Cancellation::unbind() {
  std::lock_guard lock(mutex_);
  hook_ = nullptr;
}

}  // namespace bridge::worker
