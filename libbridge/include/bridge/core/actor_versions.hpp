#pragma once
/// @file ActorVersions: the highest version of each actor a client was told of.

#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>

#include "bridge/client.hpp"

namespace bridge::core {

/// Sent with each actor call (`JobRequest.actor_version_seen`), so that a broker tells a Redis that
/// lost acknowledged state from a new actor (DATA_LOSS). Versions come from the call's results and
/// from actor_info / actor_reset replies. Callers' threads read it, the I/O thread's callbacks
/// write it. Actors are keyed "<tenant>/<id>".
class ActorVersions {
 public:
  std::uint64_t seen(const std::string& actor) const;
  void note(const std::string& actor, std::uint64_t version);
  /// The version to send with a call to `actor`; `on_result` is wrapped to note the result's.
  std::uint64_t track(const std::string& actor, Client::Callback& on_result);

 private:
  mutable std::mutex mutex_;
  std::unordered_map<std::string, std::uint64_t> seen_;
};

}  // namespace bridge::core
