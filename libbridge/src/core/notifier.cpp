#include "bridge/core/notifier.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <system_error>

namespace bridge::core {

Notifier::Notifier() : fd_(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
  if (fd_ < 0) throw std::system_error(errno, std::generic_category(), "eventfd");
}

Notifier::~Notifier() { ::close(fd_); }

void Notifier::notify() noexcept {
  const std::uint64_t one = 1;
  // EAGAIN means the counter is saturated, which still wakes the poller; nothing else can fail here.
  [[maybe_unused]] auto n = ::write(fd_, &one, sizeof one);
}

void Notifier::drain() noexcept {
  std::uint64_t value = 0;
  [[maybe_unused]] auto n = ::read(fd_, &value, sizeof value);
}

}  // namespace bridge::core
