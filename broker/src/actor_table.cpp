#include "bridge/broker/actor_table.hpp"

#include <utility>

namespace bridge::broker {

ActorEntry& ActorTable::get(const std::string& tenant, const std::string& actor_id) {
  const std::string key = tenant + "/" + actor_id;
  auto [it, created] = actors_.try_emplace(key);
  if (created) {
    it->second.key = key;
    it->second.tenant = tenant;
    it->second.actor_id = actor_id;
    it->second.last_used = Clock::now();
  }
  return it->second;
}

void ActorTable::enqueue(ActorEntry& actor, std::unique_ptr<Job> job) {
  actor.waiting.push_back(std::move(job));
  ++waiting_;
}

std::unique_ptr<Job> ActorTable::next_call(ActorEntry& actor) {
  if (actor.waiting.empty()) return nullptr;
  std::unique_ptr<Job> job = std::move(actor.waiting.front());
  actor.waiting.pop_front();
  --waiting_;
  return job;
}

ActorEntry* ActorTable::find(const std::string& key) {
  auto it = actors_.find(key);
  return it == actors_.end() ? nullptr : &it->second;
}

std::vector<std::string> ActorTable::idle_since(Clock::time_point cutoff) const {
  std::vector<std::string> idle;
  for (const auto& [key, actor] : actors_)
    if (!actor.busy && actor.waiting.empty() && actor.last_used < cutoff) idle.push_back(key);
  return idle;
}

std::vector<std::unique_ptr<Job>> ActorTable::take_all_waiting() {
  std::vector<std::unique_ptr<Job>> all;
  for (auto& [key, actor] : actors_)
    while (auto job = next_call(actor)) all.push_back(std::move(job));
  return all;
}

std::vector<std::unique_ptr<Job>> ActorTable::take_expired(Clock::time_point now) {
  std::vector<std::unique_ptr<Job>> expired;
  for (auto& [key, actor] : actors_)
    for (auto it = actor.waiting.begin(); it != actor.waiting.end();) {
      if ((*it)->deadline > now) {
        ++it;
        continue;
      }
      expired.push_back(std::move(*it));
      it = actor.waiting.erase(it);
      --waiting_;
    }
  return expired;
}

}  // namespace bridge::broker
