#include "delivery.hpp"

#include <pybind11/pybind11.h>

#include "gil.hpp"

namespace py = pybind11;

namespace gpubridge {
namespace {

// The delivery thread's Python thread state: made at its first batch and kept for its life. A
// gil_scoped_acquire per batch made and freed one each time, and Python 3.11 maps a 16 KiB stack
// for each and unmaps it after, so every batch flushed the TLB of each CPU the process ran on
// (perf: about 8% of the Python client's samples with tiny jobs, under munmap).
class KeptThreadState {
 public:
  KeptThreadState() = default;
  KeptThreadState(const KeptThreadState&) = delete;
  KeptThreadState& operator=(const KeptThreadState&) = delete;
  ~KeptThreadState() {
    // Past the start of finalization, taking the GIL would end this thread inside Python: the
    // state is left to the exiting process.
    if (state_ == nullptr || !Py_IsInitialized() || _Py_IsFinalizing()) return;
    PyEval_RestoreThread(state_);
    PyGILState_Release(made_);
  }

  /// Holds the GIL for one batch.
  class Held {
   public:
    explicit Held(KeptThreadState& kept) : kept_(kept) {
      if (kept_.state_ == nullptr) {
        kept_.made_ = PyGILState_Ensure();
        kept_.state_ = PyThreadState_Get();
      } else {
        PyEval_RestoreThread(kept_.state_);
      }
    }
    ~Held() { PyEval_SaveThread(); }
    Held(const Held&) = delete;
    Held& operator=(const Held&) = delete;

   private:
    KeptThreadState& kept_;
  };

 private:
  PyThreadState* state_ = nullptr;
  PyGILState_STATE made_{};
};

}  // namespace

Delivery::Delivery(Complete complete) : state_(std::make_shared<State>()) {
  thread_ = std::thread(run, state_, std::move(complete));
}

Delivery::~Delivery() {
  {
    std::lock_guard lock(state_->mutex);
    state_->stopping = true;
  }
  state_->wake.notify_one();
  if (std::this_thread::get_id() == thread_.get_id()) {
    // The last reference to the Client went in one of its own futures' callbacks: the thread ends
    // by itself after this batch, holding its own share of the state.
    thread_.detach();
    return;
  }
  if (PyGILState_Check()) {
    py::gil_scoped_release unlocked;  // the thread needs the GIL to deliver what is queued
    thread_.join();
  } else {
    thread_.join();
  }
}

void Delivery::post(PyObject* future, bridge::JobResult result) {
  const bool io_thread = std::this_thread::get_id() == state_->io_thread.load(std::memory_order_relaxed);
  bool wake = false;
  {
    std::lock_guard lock(state_->mutex);
    // Only the first result of a batch wakes the thread: the ones behind it are taken with it, and a
    // wake-up per result would cost a system call each while the thread is already awake.
    if (state_->queue.empty()) (io_thread ? state_->wake_due : wake) = true;
    state_->queue.push_back({future, std::move(result)});
  }
  if (wake) state_->wake.notify_one();
}

void Delivery::after_callbacks() {
  state_->io_thread.store(std::this_thread::get_id(), std::memory_order_relaxed);
  bool wake = false;
  {
    std::lock_guard lock(state_->mutex);
    std::swap(wake, state_->wake_due);
  }
  if (wake) state_->wake.notify_one();
}

void Delivery::hold_sends_of(bridge::Client& client) {
  std::lock_guard lock(state_->mutex);
  state_->client = &client;
}

void Delivery::end_hold() {
  state_->held.reset();
  std::lock_guard lock(state_->mutex);
  state_->client = nullptr;
}

void Delivery::flush() {
  std::unique_lock lock(state_->mutex);
  state_->drained.wait(lock, [&] { return (state_->queue.empty() && !state_->busy) || state_->stopping; });
}

void Delivery::run(std::shared_ptr<State> state, Complete complete) {
  KeptThreadState python;
  while (true) {
    std::deque<Item> batch;
    bool stopping = false;
    bridge::Client* client = nullptr;
    {
      std::unique_lock lock(state->mutex);
      state->wake.wait(lock, [&] { return state->stopping || !state->queue.empty(); });
      batch.swap(state->queue);
      stopping = state->stopping;
      state->busy = true;
      client = state->client;
    }
    if (!batch.empty() || stopping) {
      // After the interpreter has begun to finalize, taking the GIL would end this thread inside
      // Python; the process is exiting and nobody waits for these futures.
      if (!Py_IsInitialized() || _Py_IsFinalizing()) {
        std::lock_guard lock(state->mutex);
        state->stopping = true;
        state->drained.notify_all();
        return;
      }
      KeptThreadState::Held gil(python);
      // A closed-loop caller submits its next job from each done-callback: held, those go out
      // together at the end of the batch instead of waking the client's I/O thread once each.
      if (client != nullptr) state->held.emplace(*client);
      for (Item& item : batch) complete(item.future, std::move(item.result));
      state->held.reset();  // sends them (unless end_hold() came first)
      release_deferred();
    }
    {
      std::lock_guard lock(state->mutex);
      state->busy = false;
      if (state->queue.empty()) state->drained.notify_all();
    }
    if (stopping) {
      std::lock_guard lock(state->mutex);
      if (state->queue.empty()) return;
    }
  }
}

}  // namespace gpubridge
