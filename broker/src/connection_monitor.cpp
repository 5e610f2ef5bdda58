#include "bridge/broker/connection_monitor.hpp"

#include <dirent.h>
#include <sys/resource.h>

#include <atomic>
#include <cstring>

#include <spdlog/spdlog.h>
#include <zmq_addon.hpp>

namespace bridge::broker {
namespace {

constexpr auto kRepeatLogEvery = std::chrono::seconds(10);
// Descriptors kept free for what is not a connection (Redis, a reconnect, the metrics server): at
// this distance from the limit, new connections are as good as refused.
constexpr std::int64_t kHeadroom = 8;

std::string monitor_endpoint() {
  static std::atomic<int> next{0};
  return "inproc://bridge-monitor-" + std::to_string(next.fetch_add(1));
}

std::int64_t current_limit() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY) return 0;
  return static_cast<std::int64_t>(limit.rlim_cur);
}

// Descriptors this process holds, from /proc/self/fd (less the one reading it); `limit` when not
// even that one could be opened (EMFILE: every descriptor is taken); -1 if unknown.
std::int64_t count_open_files(std::int64_t limit) {
  DIR* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr) return errno == EMFILE || errno == ENFILE ? limit : -1;
  std::int64_t n = 0;
  while (const dirent* entry = ::readdir(dir))
    if (entry->d_name[0] != '.') ++n;
  ::closedir(dir);
  return n - 1;
}

}  // namespace

ConnectionMonitor::ConnectionMonitor(zmq::context_t& context, zmq::socket_t& watched, std::string role)
    : role_(std::move(role)), events_(context, zmq::socket_type::pair) {
  const std::string endpoint = monitor_endpoint();
  if (zmq_socket_monitor(watched.handle(), endpoint.c_str(), ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_DISCONNECTED) != 0)
    throw zmq::error_t();
  events_.set(zmq::sockopt::linger, 0);
  events_.connect(endpoint);
}

void ConnectionMonitor::drain(const std::function<void(int fd)>& on_disconnected) {
  while (true) {
    // Each event: [uint16 event][uint32 value], then the endpoint.
    std::vector<zmq::message_t> frames;
    if (!zmq::recv_multipart(events_, std::back_inserter(frames), zmq::recv_flags::dontwait)) break;
    if (frames.empty() || frames[0].size() < 6) continue;
    std::uint16_t event = 0;
    std::memcpy(&event, frames[0].data(), sizeof event);
    if (event == ZMQ_EVENT_ACCEPTED) ++connections_;
    if (event == ZMQ_EVENT_DISCONNECTED) {
      if (connections_ > 0) --connections_;
      std::int32_t fd = -1;
      std::memcpy(&fd, static_cast<const char*>(frames[0].data()) + sizeof event, sizeof fd);
      if (on_disconnected) on_disconnected(fd);
    }
  }
}

void ConnectionMonitor::check_descriptors(std::chrono::steady_clock::time_point now) {
  limit_ = current_limit();
  open_files_ = count_open_files(limit_);
  if (open_files_ < 0 || limit_ <= 0) return;
  const bool at_limit = open_files_ + kHeadroom >= limit_;
  if (at_limit && (!at_limit_ || now >= next_log_)) {
    spdlog::error("{}: {} of {} file descriptors in use ({} client connections): new connections cannot be "
                  "accepted and wait, while those connected are served; raise the open-files limit (ulimit -n, "
                  "LimitNOFILE=, docker --ulimit nofile=)",
                  role_, open_files_, limit_, connections_);
    next_log_ = now + kRepeatLogEvery;
  } else if (!at_limit && at_limit_) {
    spdlog::info("{}: file descriptors free again ({} of {} in use, {} client connections)", role_, open_files_, limit_,
                 connections_);
  }
  at_limit_ = at_limit;
}

std::string raise_open_files_limit() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return std::string("open-files limit unknown: ") + std::strerror(errno);
  const rlim_t before = limit.rlim_cur;
  if (limit.rlim_cur == limit.rlim_max) return "open-files limit " + std::to_string(before) + " (the hard limit)";
  limit.rlim_cur = limit.rlim_max;
  if (::setrlimit(RLIMIT_NOFILE, &limit) != 0)
    return "open-files limit " + std::to_string(before) + " (could not raise it: " + std::strerror(errno) + ")";
  return "open-files limit raised from " + std::to_string(before) + " to " + std::to_string(limit.rlim_cur);
}

}  // namespace bridge::broker
