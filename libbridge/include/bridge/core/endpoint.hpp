#pragma once
/// @file What every event loop of the fleet is made of: the broker's, the worker's and the client's
/// I/O thread each wait on ZeroMQ sockets and eventfds in one PollSet, read each socket with a
/// receive budget, and name themselves with the identities below. Each keeps its own `while`: the
/// loops differ in when they stop and what they do between wake-ups, not in how they wait.

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <zmq.hpp>

#include "bridge/core/notifier.hpp"
#include "bridge/core/wire.hpp"

namespace bridge::core {

/// zmq_poll over `items`; a signal interrupting it counts as a timeout (every revents 0), so that a
/// signal handler, which only notifies an eventfd, never unwinds a loop. Other errors throw zmq::error_t.
int poll(zmq_pollitem_t* items, int count, std::chrono::milliseconds timeout);

/// The sources one thread waits on, each with the handler that runs when it is ready. After a wait,
/// handlers run in the order their sources were added, and steps added with every_wakeup() run at
/// their place in that order whether or not anything was ready: the order of the adds is the
/// loop's order of work, written once (the broker, for instance, reads handshakes before messages).
/// Sources are looked up at each wait, so a socket that is replaced (a worker's reconnect) is
/// followed. Used by one thread; not copyable, since handlers usually capture their owner.
class PollSet {
 public:
  using Handler = std::function<void()>;
  using Handle = std::function<void*()>;

  PollSet() = default;
  PollSet(const PollSet&) = delete;
  PollSet& operator=(const PollSet&) = delete;

  /// `socket`, when it has a message to read. The socket must outlive the set.
  void on_readable(zmq::socket_t& socket, Handler handler);
  /// The socket whose handle `handle` returns at each wait (one owned through a pointer and
  /// replaced, or a monitor's), when it has a message to read.
  void on_readable(Handle handle, Handler handler);
  /// A socket that is seldom ready (a monitor, the ZAP handler), when it has a message to read. It is
  /// waited for through its ZMQ_FD, which costs nothing at a wake-up it has no part in, where
  /// on_readable() asks libzmq at every wake-up (two system calls per socket per pass: a poll and a
  /// getpid). `handler` must read until it would block; it also runs at the first wait on each new
  /// socket `handle` gives, and again at the next wake-up (at once) while messages remain.
  void on_readable_seldom(Handle handle, Handler handler);
  /// `notifier`, when notified: it is drained, then `handler` runs. The notifier must outlive the set.
  void on_notified(Notifier& notifier, Handler handler);
  /// A plain descriptor with the events to wait for chosen at each wait (hiredis wants to write
  /// only while it has something queued); skipped while `fd` returns a negative descriptor.
  void on_events(std::function<int()> fd, std::function<short()> events, std::function<void(short)> handler);
  /// A step that runs on every wake-up, at its place among the handlers.
  void every_wakeup(Handler step);

  /// Waits at most `timeout` for any source, then runs the ready sources' handlers and every step.
  void wait(std::chrono::milliseconds timeout);

 private:
  struct Source {
    enum class Kind { kSocket, kSeldomSocket, kNotifier, kDescriptor, kStep } kind;
    Handle handle;                         // kSocket, kSeldomSocket
    bool pending = false;                  // kSeldomSocket: messages remained after the handler
    void* last_handle = nullptr;           // kSeldomSocket: the socket handle() gave last time
    Notifier* notifier = nullptr;          // kNotifier
    std::function<int()> fd;               // kDescriptor
    std::function<short()> events;         // kDescriptor
    std::function<void(short)> on_events;  // kDescriptor
    Handler handler;                       // kSocket, kSeldomSocket, kNotifier, kStep
  };
  std::vector<Source> sources_;
  std::vector<zmq_pollitem_t> items_;  // reused across waits
  std::vector<int> item_of_;           // sources_[i]'s index in items_, or -1 (a step, a closed descriptor)
};

/// Reads up to `budget` messages from `socket` without blocking and hands each to `on_message`,
/// which returns false to stop early (it replaced the socket, say). The budget keeps one busy peer
/// from holding a loop away from its timers and its other sockets. Returns how many were read.
int receive_batch(zmq::socket_t& socket, int budget, const std::function<bool(Frames&)>& on_message);

/// Connects `socket` to `endpoint`, having tried each of `all` first (connected, then disconnected),
/// so that a malformed one throws now (ConfigError, naming it), not when a client moves to it.
void connect_checking_all(zmq::socket_t& socket, const std::string& endpoint, const std::vector<std::string>& all);

/// 64 bits from the kernel's CSPRNG (std::random_device is getrandom on Linux): incarnations, which
/// tell a peer that this process restarted, and the seeds of anything that must not repeat across restarts.
std::uint64_t random_u64();

/// `bits` random bits (a multiple of 4) as lower-case hex, from random_u64(). A client's routing id
/// carries 128 of them: it must not be guessable (docs/security.md, "Routing ids").
std::string random_hex(int bits);

/// The default name of a broker or worker process: host, pid and 16 random bits, since the pid alone
/// is not unique across containers (all pid 1).
std::string default_process_id();

}  // namespace bridge::core
