#include "bridge/broker/connection_monitor.hpp"

#include <sys/resource.h>

#include <atomic>
#include <cstring>

#include <spdlog/spdlog.h>
#include <zmq_addon.hpp>

namespace bridge::broker {
namespace {

constexpr auto kRepeatLogEvery = std::chrono::seconds(10);
constexpr auto kQuietBeforeRecovery = std::chrono::seconds(1);

std::string monitor_endpoint() {
  static std::atomic<int> next{0};
  return "inproc://bridge-monitor-" + std::to_string(next.fetch_add(1));
}

std::string open_files_limit() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return "unknown";
  return std::to_string(limit.rlim_cur);
}

}  // namespace

ConnectionMonitor::ConnectionMonitor(zmq::context_t& context, zmq::socket_t& watched, std::string role)
    : role_(std::move(role)), events_(context, zmq::socket_type::pair) {
  const std::string endpoint = monitor_endpoint();
  if (zmq_socket_monitor(watched.handle(), endpoint.c_str(),
                         ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_ACCEPT_FAILED | ZMQ_EVENT_DISCONNECTED) != 0)
    throw zmq::error_t();
  events_.set(zmq::sockopt::linger, 0);
  events_.connect(endpoint);
}

void ConnectionMonitor::drain(std::chrono::steady_clock::time_point now) {
  while (true) {
    // Each event: [uint16 event][uint32 value], then the endpoint.
    std::vector<zmq::message_t> frames;
    if (!zmq::recv_multipart(events_, std::back_inserter(frames), zmq::recv_flags::dontwait)) break;
    if (frames.empty() || frames[0].size() < 6) continue;
    std::uint16_t event = 0;
    std::uint32_t value = 0;
    std::memcpy(&event, frames[0].data(), sizeof event);
    std::memcpy(&value, static_cast<const char*>(frames[0].data()) + sizeof event, sizeof value);
    switch (event) {
      case ZMQ_EVENT_ACCEPTED: ++connections_; break;
      case ZMQ_EVENT_DISCONNECTED:
        if (connections_ > 0) --connections_;
        break;
      case ZMQ_EVENT_ACCEPT_FAILED:
        ++failed_accepts_;
        ++failed_since_log_;
        last_failure_ = now;
        if (failing_errno_ == 0 || now >= next_log_) {
          const bool first = failing_errno_ == 0;
          failing_errno_ = static_cast<int>(value);
          spdlog::error("{}: cannot accept a connection: {} ({}; {} connections held, open-files limit {}); new peers "
                        "wait while those connected are served{}",
                        role_, std::strerror(failing_errno_), first ? "first failure" : std::to_string(failed_since_log_) + " failures in the last 10 s",
                        connections_, open_files_limit(),
                        failing_errno_ == EMFILE || failing_errno_ == ENFILE
                            ? "; raise the limit (ulimit -n, LimitNOFILE=, docker --ulimit nofile=)"
                            : "");
          failed_since_log_ = 0;
          next_log_ = now + kRepeatLogEvery;
        }
        break;
      default: break;
    }
  }
}

void ConnectionMonitor::tick(std::chrono::steady_clock::time_point now) {
  if (failing_errno_ == 0 || now - last_failure_ < kQuietBeforeRecovery) return;
  spdlog::info("{}: accepting connections again ({} more accepts had failed; {} connections held)", role_,
               failed_since_log_, connections_);
  failing_errno_ = 0;
  failed_since_log_ = 0;
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
