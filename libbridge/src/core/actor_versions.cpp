#include "bridge/core/actor_versions.hpp"

#include <algorithm>

namespace bridge::core {

std::uint64_t ActorVersions::seen(const std::string& actor) const {
  std::lock_guard lock(mutex_);
  const auto it = seen_.find(actor);
  return it == seen_.end() ? 0 : it->second;
}

void ActorVersions::note(const std::string& actor, std::uint64_t version) {
  if (version == 0) return;  // not an actor result, or a refused call
  std::lock_guard lock(mutex_);
  std::uint64_t& seen = seen_[actor];
  seen = std::max(seen, version);
}

std::uint64_t ActorVersions::track(const std::string& actor, Client::Callback& on_result) {
  on_result = [this, actor, done = std::move(on_result)](JobResult result) {
    note(actor, result.actor_version);
    done(std::move(result));
  };
  return seen(actor);
}

}  // namespace bridge::core
