#include "bridge/core/poll.hpp"

#include <cerrno>

#include <zmq.hpp>

namespace bridge::core {

int poll(zmq_pollitem_t* items, int count, std::chrono::milliseconds timeout) {
  const int rc = zmq_poll(items, count, static_cast<long>(timeout.count()));
  if (rc >= 0) return rc;
  if (zmq_errno() != EINTR) throw zmq::error_t();
  for (int i = 0; i < count; ++i) items[i].revents = 0;
  return 0;
}

}  // namespace bridge::core
