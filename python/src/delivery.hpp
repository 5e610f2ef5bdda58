#pragma once
/// @file Delivery: where results meet Python.
///
/// The client's I/O thread never takes the GIL: a result it receives is queued here, and one
/// delivery thread per Client takes the GIL once per batch of results and completes their
/// concurrent.futures.Future objects (which in turn wake asyncio loops through
/// call_soon_threadsafe). A Python thread that computes while the GIL is in demand therefore slows
/// only the delivery of results, never the sockets.

#include <Python.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "bridge/client.hpp"
#include "bridge/job.hpp"

namespace gpubridge {

class Delivery {
 public:
  /// Completes `future` (a strong reference, handed over) with `result`; runs with the GIL held.
  using Complete = std::function<void(PyObject* future, bridge::JobResult result)>;

  explicit Delivery(Complete complete);
  /// Delivers everything queued, then stops. Releases the GIL while it waits for the thread.
  ~Delivery();
  Delivery(const Delivery&) = delete;
  Delivery& operator=(const Delivery&) = delete;

  /// Queues a result for `future`; any thread, with or without the GIL. On the client's I/O thread
  /// the wake-up waits for after_callbacks().
  void post(PyObject* future, bridge::JobResult result);
  /// The client's Options::after_callbacks: wakes the thread once for everything the I/O thread
  /// queued in its wake-up, instead of at its first result (which split a burst of results into
  /// several wake-ups of this thread, each a context switch, while it was still arriving).
  void after_callbacks();
  /// Waits until everything posted so far has been delivered. Call without the GIL (the delivery
  /// thread needs it), and not from the delivery thread.
  void flush();
  /// Whether the calling thread is this delivery thread (a future's done-callback runs on it).
  bool is_current() const { return std::this_thread::get_id() == thread_.get_id(); }

  /// The jobs that done-callbacks submit to `client` while a batch is delivered are sent together
  /// when the batch ends (Client::BatchedSends): one wake-up of its I/O thread per batch. Call before
  /// the first post. `client` must outlive this, or end_hold() be called first.
  void hold_sends_of(bridge::Client& client);
  /// On this delivery thread, inside a batch (a done-callback dropped the last reference to the
  /// client): ends the hold now and holds no more, so that the client can go before the batch ends.
  void end_hold();

 private:
  struct Item {
    PyObject* future;
    bridge::JobResult result;
  };
  struct State {
    std::mutex mutex;
    std::condition_variable wake;
    std::condition_variable drained;  // the queue is empty and no batch is being delivered
    std::deque<Item> queue;
    bool busy = false;
    bool stopping = false;
    bool wake_due = false;  // the I/O thread queued results; its after_callbacks() wakes the thread
    std::atomic<std::thread::id> io_thread{};  // the client's, once it has called after_callbacks()
    bridge::Client* client = nullptr;  // whose sends a batch holds; read and cleared on the thread
    std::optional<bridge::Client::BatchedSends> held;  // the delivery thread's only
  };
  static void run(std::shared_ptr<State> state, Complete complete);

  std::shared_ptr<State> state_;  // shared with the thread, which may outlive this (see the destructor)
  std::thread thread_;
};

}  // namespace gpubridge
