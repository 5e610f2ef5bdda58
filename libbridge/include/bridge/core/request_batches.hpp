#pragma once
/// @file The client's one-frame job requests of one pass over its outbox, gathered into Batches for a
/// broker that reads them (docs/protocol.md, "Batches"). Internal to libgpubridge; unit-tested with
/// sockets of its own (tests/unit/batch_test.cpp).

#include <cstdint>
#include <vector>

#include <zmq.hpp>

#include "bridge/core/batch.hpp"

namespace bridge::core {

class RequestBatches {
 public:
  /// From here to flush(), offer() gathers, if `gather` (the broker reads Batches).
  void begin(bool gather) { gathering_ = gather; }
  /// Takes a message to be sent if it is a JobRequest of one frame and this is gathering; else
  /// false, and the message is the caller's to send.
  bool offer(Frames& frames);
  bool empty() const { return full_.empty() && open_.empty(); }
  /// Sends what was gathered on `socket` (without waiting), one message per Batch, and stops
  /// gathering. Returns the ids of the jobs whose message could not be sent (the queue towards the
  /// broker is full): they were not.
  std::vector<std::uint64_t> flush(zmq::socket_t& socket);

 private:
  /// Gathers the request `header` (a JobRequest of one frame) of job `id`.
  void add(std::uint64_t id, zmq::message_t header);

  struct Gathered {
    zmq::message_t frame;
    std::vector<std::uint64_t> ids;
  };
  std::vector<Gathered> full_;  ///< taken from open_ when the next request did not fit
  BatchWriter open_;
  std::vector<std::uint64_t> open_ids_;
  bool gathering_ = false;
};

}  // namespace bridge::core
