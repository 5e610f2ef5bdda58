#pragma once
/// @file The native Client and Stream of the gpubridge package.

#include <atomic>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <pybind11/pybind11.h>

#include "bridge/client.hpp"
#include "bridge/stream.hpp"
#include "delivery.hpp"

namespace gpubridge {

/// A bridge::Client and its delivery thread, shared by the Python Client, every call in progress
/// on it and its streams (bridge::Stream holds the client by reference): none of them is freed while
/// another thread is inside a call. Destroyed in that order: the client answers what is pending,
/// then the delivery thread hands those answers to Python.
struct Connection {
  std::unique_ptr<Delivery> delivery;
  std::unique_ptr<bridge::Client> client;
  std::atomic<bool> closed{false};
  ~Connection();
};

class PyClient {
 public:
  using Stages = std::vector<std::pair<std::string, pybind11::object>>;

  PyClient(const std::string& broker, std::string tenant, std::string key_file, std::string broker_key_file,
           double timeout, int retry_attempts, double retry_initial_backoff, double retry_max_backoff,
           double broker_check);
  ~PyClient();

  /// A plain job: the kernel, its inputs and params. The common case, with as little conversion as can be.
  std::uint64_t submit(std::string kernel, const pybind11::sequence& inputs, const pybind11::handle& params,
                       pybind11::object future);
  /// Any job: tenant, actor, priority, placement, timeout, pipeline stages, resident inputs, kept outputs.
  std::uint64_t submit_with(const std::string& kernel, const pybind11::sequence& inputs, const pybind11::handle& params,
                            pybind11::object future, const std::string& tenant, const std::string& actor_id,
                            int priority, const std::string& placement, std::optional<double> timeout,
                            const Stages& stages, const std::vector<std::string>& resident_inputs,
                            const std::vector<std::string>& keep_outputs);
  void cancel(std::uint64_t job_id);
  pybind11::dict status();
  pybind11::dict quotas(const std::string& tenant);
  pybind11::dict actor_info(const std::string& tenant, const std::string& actor_id);
  pybind11::dict actor_reset(const std::string& tenant, const std::string& actor_id);
  std::uint64_t resent_after_restart();
  std::string tenant();
  bool closed() const { return !conn_ || conn_->closed; }
  bool on_delivery_thread() const { return conn_ && conn_->delivery->is_current(); }
  /// Every pending job is answered CANCELLED and stopped in the fleet, and its future completed,
  /// before this returns. Idempotent; any thread.
  void close();
  /// In a child after fork(): the threads are gone, so nothing may be joined or freed; every call
  /// says to make a new Client.
  void abandon_after_fork();

  /// The connection, for a call or a stream; ValueError once closed.
  std::shared_ptr<Connection> live() const;

 private:
  std::uint64_t send(bridge::JobRequest request, const pybind11::sequence& inputs, pybind11::object future);

  std::shared_ptr<Connection> conn_;
  bool forked_ = false;
};

/// A Stream (bridge/stream.hpp): writes and reads wait without the GIL.
class PyStream {
 public:
  PyStream(const PyClient& client, const std::string& kernel, const pybind11::handle& params, std::size_t window,
           bool block_when_full, const std::string& tenant, const std::string& placement,
           std::optional<double> timeout);
  void write(const pybind11::sequence& inputs);
  /// The next result in write order (a failed item raises its error); None when closed and read out.
  pybind11::object read();
  void close() { stream_->close(); }
  std::size_t outstanding() const { return stream_->outstanding(); }

 private:
  std::shared_ptr<Connection> conn_;  // declared first: outlives the stream, which uses its client
  std::unique_ptr<bridge::Stream> stream_;
};

/// Client.batched_sends(): the jobs the entering thread submits inside its `with` block are sent
/// together when the block ends (bridge::Client::BatchedSends).
class PySendBatch {
 public:
  explicit PySendBatch(const PyClient& client) : conn_(client.live()) {}
  void enter();
  void exit();
  void send_now();

 private:
  std::shared_ptr<Connection> conn_;  // declared first: outlives the hold on its client
  std::optional<bridge::Client::BatchedSends> held_;
};

}  // namespace gpubridge
