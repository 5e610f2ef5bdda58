#include "bridge/core/endpoint.hpp"

#include <unistd.h>

#include <cerrno>
#include <random>

#include <zmq_addon.hpp>

#include "bridge/core/config_map.hpp"

namespace bridge::core {

int poll(zmq_pollitem_t* items, int count, std::chrono::milliseconds timeout) {
  const int rc = zmq_poll(items, count, static_cast<long>(timeout.count()));
  if (rc >= 0) return rc;
  if (zmq_errno() != EINTR) throw zmq::error_t();
  for (int i = 0; i < count; ++i) items[i].revents = 0;
  return 0;
}

void PollSet::on_readable(zmq::socket_t& socket, Handler handler) {
  on_readable([&socket] { return socket.handle(); }, std::move(handler));
}

void PollSet::on_readable(Handle handle, Handler handler) {
  sources_.push_back({.kind = Source::Kind::kSocket, .handle = std::move(handle), .handler = std::move(handler)});
}

void PollSet::on_readable_seldom(Handle handle, Handler handler) {
  sources_.push_back({.kind = Source::Kind::kSeldomSocket, .handle = std::move(handle), .handler = std::move(handler)});
}

void PollSet::on_notified(Notifier& notifier, Handler handler) {
  sources_.push_back({.kind = Source::Kind::kNotifier, .notifier = &notifier, .handler = std::move(handler)});
}

void PollSet::on_events(std::function<int()> fd, std::function<short()> events, std::function<void(short)> handler) {
  sources_.push_back({.kind = Source::Kind::kDescriptor,
                      .fd = std::move(fd),
                      .events = std::move(events),
                      .on_events = std::move(handler)});
}

void PollSet::every_wakeup(Handler step) {
  sources_.push_back({.kind = Source::Kind::kStep, .handler = std::move(step)});
}

void PollSet::wait(std::chrono::milliseconds timeout) {
  items_.clear();
  item_of_.assign(sources_.size(), -1);
  for (std::size_t i = 0; i < sources_.size(); ++i) {
    const Source& s = sources_[i];
    zmq_pollitem_t item{nullptr, -1, ZMQ_POLLIN, 0};
    switch (s.kind) {
      case Source::Kind::kSocket: item.socket = s.handle(); break;
      case Source::Kind::kSeldomSocket: {
        // ZMQ_FD is readable when the socket has commands to process, among them "a message came
        // on a pipe whose reader found it empty"; reading until EAGAIN processes them and clears
        // it. A pipe nobody has read from yet (a monitor's, just connected) announces nothing, so
        // a new socket is read at once, which leaves its pipes announcing.
        void* socket = s.handle();
        if (socket != s.last_handle) {
          sources_[i].last_handle = socket;
          sources_[i].pending = true;
        }
        std::size_t size = sizeof(item.fd);
        if (zmq_getsockopt(socket, ZMQ_FD, &item.fd, &size) != 0) continue;
        if (s.pending) timeout = std::chrono::milliseconds(0);
        break;
      }
      case Source::Kind::kNotifier: item.fd = s.notifier->fd(); break;
      case Source::Kind::kDescriptor:
        item.fd = s.fd();
        if (item.fd < 0) continue;
        item.events = s.events();
        break;
      case Source::Kind::kStep: continue;
    }
    item_of_[i] = static_cast<int>(items_.size());
    items_.push_back(item);
  }
  poll(items_.data(), static_cast<int>(items_.size()), timeout);
  // Handlers may add nothing to the set (they hold no reference to it), but they may replace a
  // socket: the revents read here were taken before any handler ran, which is what they describe.
  for (std::size_t i = 0; i < sources_.size(); ++i) {
    const Source& s = sources_[i];
    const short revents = item_of_[i] >= 0 ? items_[static_cast<std::size_t>(item_of_[i])].revents : 0;
    switch (s.kind) {
      case Source::Kind::kSocket:
        if (revents & ZMQ_POLLIN) s.handler();
        break;
      case Source::Kind::kSeldomSocket: {
        if (!(revents & ZMQ_POLLIN) && !s.pending) break;
        s.handler();
        // A send on the socket (the ZAP handler's replies) may have processed the command that
        // announced a later message, leaving ZMQ_FD quiet with a message to read: asked here.
        std::uint32_t events = 0;
        std::size_t size = sizeof(events);
        sources_[i].pending = zmq_getsockopt(s.handle(), ZMQ_EVENTS, &events, &size) == 0 && (events & ZMQ_POLLIN);
        break;
      }
      case Source::Kind::kNotifier:
        if (revents & ZMQ_POLLIN) {
          s.notifier->drain();
          s.handler();
        }
        break;
      case Source::Kind::kDescriptor:
        if (revents != 0) s.on_events(revents);
        break;
      case Source::Kind::kStep: s.handler(); break;
    }
  }
}

int receive_batch(zmq::socket_t& socket, int budget, const std::function<bool(Frames&)>& on_message) {
  int read = 0;
  while (read < budget) {
    Frames frames;
    if (!zmq::recv_multipart(socket, std::back_inserter(frames), zmq::recv_flags::dontwait)) break;
    ++read;
    if (!on_message(frames)) break;
  }
  return read;
}

std::uint64_t random_u64() {
  std::random_device rd;
  return (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
}

std::string random_hex(int bits) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(static_cast<std::size_t>(bits / 4));
  while (bits > 0) {
    std::uint64_t word = random_u64();
    for (int shift = 0; shift < 64 && bits > 0; shift += 4, bits -= 4) out += kHex[(word >> shift) & 0xf];
  }
  return out;
}

std::string default_process_id() {
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  return std::string(host) + "-" + std::to_string(::getpid()) + "-" + random_hex(16);
}

void connect_checking_all(zmq::socket_t& socket, const std::string& endpoint, const std::vector<std::string>& all) {
  std::string trying = endpoint;
  try {
    for (const std::string& other : all) {
      if (other == endpoint) continue;
      trying = other;
      socket.connect(other);
      socket.disconnect(other);
    }
    trying = endpoint;
    socket.connect(endpoint);
  } catch (const zmq::error_t& e) {
    throw ConfigError("broker: '" + trying + "' is not an endpoint to connect to (" + e.what() +
                      "); give tcp://HOST:PORT, or several separated by commas");
  }
}

}  // namespace bridge::core
