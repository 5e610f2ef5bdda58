#pragma once
/// @file bridge::Stream: items flowing through one kernel with backpressure, results in order.
///
///   bridge::Stream s = bridge::Stream::open(client, "softmax", {.window = 32});
///   std::thread reader([&] { while (auto r = s.read()) use(*r); });
///   for (auto& x : items) s.write({x});   // blocks while 32 results are unread
///   s.close();                            // the reader drains what is left, then read() ends
///   reader.join();

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "bridge/client.hpp"
#include "bridge/export.hpp"

namespace bridge {

struct BRIDGE_API StreamOptions {
  std::string tenant;                        ///< empty: the client's tenant
  std::map<std::string, double> params;      ///< for every item
  /// Items written and not yet read, at most: the credits that bound memory on every side.
  std::size_t window = 16;
  /// When the window is full: true, write() waits for the reader; false, it fails fast with
  /// RESOURCE_EXHAUSTED and the item is not sent.
  bool block_when_full = true;
  Placement placement = Placement::kAny;
  std::chrono::milliseconds timeout{0};      ///< per item; 0: the client's default
};

/// Items are ordinary jobs of the fleet, so they may run on several workers at once; results are
/// handed back in write order whatever order they finish in. A worker dying mid-stream loses nothing:
/// the broker sends its unanswered items to another worker (up to max_attempts, then that item's
/// result is WORKER_LOST, in its place). Thread-safety: one writer thread and one reader thread at a
/// time. The Client must outlive the stream.
class BRIDGE_API Stream {
 public:
  static Stream open(Client& client, std::string kernel, StreamOptions options = {});

  /// Sends one item (the kernel's inputs). OK, or RESOURCE_EXHAUSTED (window full, fail-fast mode),
  /// or INVALID_ARGUMENT after close().
  Status write(std::vector<Tensor> inputs);
  /// The next result in write order; waits for it. nullopt once closed and every result was read.
  std::optional<JobResult> read();
  /// No more writes; read() returns what is left, then nullopt. Idempotent.
  void close();

  /// Items written and not yet read.
  std::size_t outstanding() const;

 private:
  struct State {
    mutable std::mutex mutex;
    std::condition_variable changed;
    std::uint64_t written = 0;  // sequence number of the next write
    std::uint64_t next_read = 0;
    std::map<std::uint64_t, JobResult> done;  // finished, not yet read
    bool closed = false;
  };
  Stream(Client& client, std::string kernel, StreamOptions options);

  Client* client_;
  std::string kernel_;
  StreamOptions options_;
  std::shared_ptr<State> state_;  // shared with the callbacks of items in flight
};

}  // namespace bridge
