#include "bridge/core/client_outbox.hpp"

#include <algorithm>

namespace bridge::core {

bool ClientOutbox::push(PendingRequest& request) {
  std::unique_lock lock(mutex_);
  if (closed_) return false;
  requests_.push_back(std::move(request));
  const auto me = std::this_thread::get_id();
  if (me == taker_) {
    self_queued_ = true;
  } else if (holders_.empty() ||
             std::none_of(holders_.begin(), holders_.end(), [&](const auto& h) { return h.first == me; })) {
    wake_if_due(lock);
  }
  return true;
}

void ClientOutbox::cancel(std::uint64_t job_id) {
  {
    std::lock_guard lock(mutex_);
    cancels_.push_back(job_id);
  }
  notifier_.notify();  // rare: no batching
}

void ClientOutbox::wake() {
  std::unique_lock lock(mutex_);
  wake_if_due(lock);
}

void ClientOutbox::wake_if_due(std::unique_lock<std::mutex>& lock) {
  if (woken_ || requests_.empty()) return;
  woken_ = true;
  lock.unlock();
  notifier_.notify();
}

std::deque<PendingRequest> ClientOutbox::take() {
  std::deque<PendingRequest> taken;
  std::lock_guard lock(mutex_);
  taken.swap(requests_);
  woken_ = false;  // a push from now on needs a wake-up of its own
  self_queued_ = false;
  return taken;
}

std::vector<std::uint64_t> ClientOutbox::take_cancels() {
  std::vector<std::uint64_t> taken;
  std::lock_guard lock(mutex_);
  taken.swap(cancels_);
  return taken;
}

std::deque<PendingRequest> ClientOutbox::close() {
  std::deque<PendingRequest> left;
  std::lock_guard lock(mutex_);
  closed_ = true;
  left.swap(requests_);
  return left;
}

void ClientOutbox::hold(std::thread::id holder) {
  std::lock_guard lock(mutex_);
  for (auto& [id, depth] : holders_)
    if (id == holder) return void(++depth);
  holders_.emplace_back(holder, 1);
}

void ClientOutbox::release(std::thread::id holder) {
  std::unique_lock lock(mutex_);
  auto it = std::find_if(holders_.begin(), holders_.end(), [&](const auto& h) { return h.first == holder; });
  if (it == holders_.end() || --it->second > 0) return;
  holders_.erase(it);
  wake_if_due(lock);
}

}  // namespace bridge::core
