#include "delivery.hpp"

#include <pybind11/pybind11.h>

#include "gil.hpp"

namespace py = pybind11;

namespace gpubridge {

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
  bool was_empty = false;
  {
    std::lock_guard lock(state_->mutex);
    was_empty = state_->queue.empty();
    state_->queue.push_back({future, std::move(result)});
  }
  // Only the first result of a batch wakes the thread: the ones behind it are taken with it, and a
  // wake-up per result would cost a system call each while the thread is already awake.
  if (was_empty) state_->wake.notify_one();
}

void Delivery::flush() {
  std::unique_lock lock(state_->mutex);
  state_->drained.wait(lock, [&] { return (state_->queue.empty() && !state_->busy) || state_->stopping; });
}

void Delivery::run(std::shared_ptr<State> state, Complete complete) {
  while (true) {
    std::deque<Item> batch;
    bool stopping = false;
    {
      std::unique_lock lock(state->mutex);
      state->wake.wait(lock, [&] { return state->stopping || !state->queue.empty(); });
      batch.swap(state->queue);
      stopping = state->stopping;
      state->busy = true;
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
      py::gil_scoped_acquire gil;
      for (Item& item : batch) complete(item.future, std::move(item.result));
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
