#pragma once
/// @file DeferredReplies: replies an in-memory store of a unit test gives only when the test says,
/// as Redis answers later, never inside the call that asked.

#include <deque>
#include <functional>

namespace bridge::broker {

class DeferredReplies {
 public:
  void push(std::function<void()> reply) { pending_.push_back(std::move(reply)); }
  /// Gives the oldest reply; false if none waits.
  bool answer() {
    if (pending_.empty()) return false;
    auto next = std::move(pending_.front());
    pending_.pop_front();
    next();
    return true;
  }

 private:
  std::deque<std::function<void()>> pending_;
};

}  // namespace bridge::broker
