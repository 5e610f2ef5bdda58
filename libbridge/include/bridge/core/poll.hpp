#pragma once
/// @file poll(): zmq_poll for the fleet's event loops.

#include <chrono>

#include <zmq.h>

namespace bridge::core {

/// zmq_poll over `items`; a signal interrupting it counts as a timeout (every revents 0), so that a
/// signal handler, which only notifies an eventfd, never unwinds a loop. Other errors throw zmq::error_t.
int poll(zmq_pollitem_t* items, int count, std::chrono::milliseconds timeout);

}  // namespace bridge::core
