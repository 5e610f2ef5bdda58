#pragma once
/// @file Python references dropped from threads that must never wait for the GIL.
///
/// An input array sent without a copy is kept alive by its Tensor, and the last copy of that Tensor
/// dies on ZeroMQ's I/O thread once the frame is on the wire. That thread must not wait for the
/// GIL (a Python thread computing holds it for up to the switch interval, and every socket of the
/// process would stall meanwhile), so it queues the reference here instead; the next thread that
/// holds the GIL and calls release_deferred() drops it.

#include <Python.h>

#include <memory>

namespace gpubridge {

/// Drops `object`'s reference now if this thread holds the GIL, later otherwise. Any thread.
void decref_later(PyObject* object) noexcept;

/// Drops the references queued by decref_later(). Call with the GIL held.
void release_deferred() noexcept;

/// An owner for bridge::Tensor::adopt that holds a strong reference to `object` (stolen) and drops
/// it through decref_later().
std::shared_ptr<const void> python_owner(PyObject* object);

}  // namespace gpubridge
