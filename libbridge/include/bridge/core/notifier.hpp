#pragma once
/// @file Notifier: an eventfd that another thread writes to wake a zmq_poll loop.

namespace bridge::core {

/// Owns an eventfd. notify() is safe from any thread and coalesces: many notifies before a drain()
/// wake the poller once. The poll loop polls fd() for POLLIN and calls drain() when it fires.
class Notifier {
 public:
  Notifier();
  ~Notifier();
  Notifier(const Notifier&) = delete;
  Notifier& operator=(const Notifier&) = delete;

  int fd() const { return fd_; }
  void notify() noexcept;
  void drain() noexcept;

 private:
  int fd_ = -1;
};

}  // namespace bridge::core
