#include "gil.hpp"

#include <mutex>
#include <vector>

namespace gpubridge {
namespace {

std::mutex& queue_mutex() {
  static std::mutex m;
  return m;
}
// Leaked on purpose: ZeroMQ's I/O thread may free a frame while the process exits.
std::vector<PyObject*>& queue() {
  static auto* q = new std::vector<PyObject*>();
  return *q;
}

}  // namespace

void decref_later(PyObject* object) noexcept {
  if (object == nullptr) return;
  // Py_IsInitialized: after the interpreter is gone there is nothing to drop the reference into.
  if (Py_IsInitialized() && PyGILState_Check()) {
    Py_DECREF(object);
    return;
  }
  std::lock_guard lock(queue_mutex());
  queue().push_back(object);
}

void release_deferred() noexcept {
  std::vector<PyObject*> drop;
  {
    std::lock_guard lock(queue_mutex());
    if (queue().empty()) return;
    drop.swap(queue());
  }
  for (PyObject* object : drop) Py_DECREF(object);
}

std::shared_ptr<const void> python_owner(PyObject* object) {
  return std::shared_ptr<const void>(object, [](PyObject* p) { decref_later(p); });
}

}  // namespace gpubridge
