#pragma once
/// @file ActorHost: the actor activations a worker holds, with their resident tensors.

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>

#include "bridge/worker/backend.hpp"

namespace bridge::worker {

/// An actor's live copy on this worker. Redis holds the truth (written through by the broker after
/// every call that changes it); this copy saves re-sending the tensors on every call.
struct Activation {
  std::uint64_t version = 0;
  std::map<std::string, Tensor> tensors;  ///< resident tensors by name
  /// The backend's device copy of each tensor (filled on first use on a GPU worker; see DeviceCopy).
  std::map<std::string, std::shared_ptr<DeviceCopy>> device_copies;

  /// Sets a tensor, with a fresh (empty) device copy: the old copy no longer matches.
  void keep(const std::string& name, Tensor tensor);
  std::shared_ptr<DeviceCopy> device_copy(const std::string& name);
};

/// Not thread-safe: the worker's socket thread only. The broker runs an actor's calls one at a time,
/// so an activation is never read and written by two calls at once.
class ActorHost {
 public:
  /// Creates or replaces the activation of `actor` ("<tenant>/<id>").
  void activate(const std::string& actor, Activation activation);
  void deactivate(const std::string& actor);
  /// The activation, or nullptr.
  Activation* find(const std::string& actor);
  /// Drops every activation (the worker moved to another broker, which knows none of them).
  void clear() { actors_.clear(); }
  std::size_t size() const { return actors_.size(); }
  /// Bytes of every resident tensor held.
  std::uint64_t resident_bytes() const;

 private:
  std::unordered_map<std::string, Activation> actors_;
};

}  // namespace bridge::worker
