#pragma once
/// @file The client's requests and cancels on their way from the callers' threads to its I/O thread,
/// and the wake-ups that tell that thread: one per batch of requests, not one per request (each is
/// a system call, and on a busy machine a context switch). Internal to libgpubridge; unit-tested
/// without sockets (tests/unit/client_outbox_test.cpp).

#include <cstdint>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include "bridge/core/notifier.hpp"
#include "bridge/core/pending_requests.hpp"

namespace bridge::core {

class ClientOutbox {
 public:
  /// The thread that takes requests out (the I/O thread). Its own pushes (from the callbacks it
  /// runs) wake nothing: it takes them after the wake-up that ran those callbacks (self_queued()).
  void set_taker(std::thread::id taker) { taker_ = taker; }

  /// Queues a request; false (and `request` untouched) once closed.
  bool push(PendingRequest& request);
  void cancel(std::uint64_t job_id);

  /// On the taker: every request queued since the last take, oldest first.
  std::deque<PendingRequest> take();
  std::vector<std::uint64_t> take_cancels();
  /// On the taker: it queued requests itself since its last take.
  bool self_queued() const { return self_queued_; }
  /// Refuses every later push and returns what is still queued.
  std::deque<PendingRequest> close();

  /// Holds the pushes of thread `holder` (nested holds count) and wakes the taker once at its last
  /// release if anything was queued. Pushes from other threads still wake it as usual.
  void hold(std::thread::id holder);
  void release(std::thread::id holder);
  /// Wakes the taker for whatever is queued, held or not (a holder about to wait for an answer).
  void wake();

  Notifier& notifier() { return notifier_; }

 private:
  void wake_if_due(std::unique_lock<std::mutex>& lock);

  std::mutex mutex_;
  std::deque<PendingRequest> requests_;  // guarded by mutex_
  std::vector<std::uint64_t> cancels_;   // guarded by mutex_
  bool closed_ = false;                  // guarded by mutex_
  /// A wake-up is on its way for what is queued (guarded by mutex_); the next take clears it.
  bool woken_ = false;
  /// Threads whose pushes wake nothing, and how deeply each holds (guarded by mutex_). A handful at
  /// most: searched on each push only when not empty.
  std::vector<std::pair<std::thread::id, int>> holders_;
  bool self_queued_ = false;  // the taker's own
  std::thread::id taker_;
  Notifier notifier_;
};

}  // namespace bridge::core
