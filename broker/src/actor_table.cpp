#include "bridge/broker/actor_table.hpp"

#include <algorithm>
#include <utility>

namespace bridge::broker {

ActorEntry& ActorTable::get(const std::string& tenant, const std::string& actor_id) {
  const std::string key = tenant + "/" + actor_id;
  auto [it, created] = actors_.try_emplace(key);
  if (created) {
    keys_by_tenant_[tenant].insert(key);
    it->second.key = key;
    it->second.tenant = tenant;
    it->second.actor_id = actor_id;
    it->second.last_used = Clock::now();
  }
  return it->second;
}

void ActorTable::count(const Job& job, bool added) {
  if (added) {
    ++waiting_;
    Waiting& w = by_tenant_[job.tenant];
    ++w.calls;
    w.bytes += job.payload_bytes;
    return;
  }
  --waiting_;
  auto it = by_tenant_.find(job.tenant);
  if (it == by_tenant_.end()) return;
  --it->second.calls;
  it->second.bytes -= std::min(it->second.bytes, job.payload_bytes);
  if (it->second.calls == 0) by_tenant_.erase(it);
}

void ActorTable::erase(const std::string& key) {
  auto it = actors_.find(key);
  if (it == actors_.end()) return;
  auto keys = keys_by_tenant_.find(it->second.tenant);
  if (keys != keys_by_tenant_.end()) {
    keys->second.erase(key);
    if (keys->second.empty()) keys_by_tenant_.erase(keys);
  }
  actors_.erase(it);
}

std::size_t ActorTable::count_of(const std::string& tenant) const {
  auto it = keys_by_tenant_.find(tenant);
  return it == keys_by_tenant_.end() ? 0 : it->second.size();
}

ActorEntry* ActorTable::least_recently_used_idle(const std::string& tenant) {
  auto keys = keys_by_tenant_.find(tenant);
  if (keys == keys_by_tenant_.end()) return nullptr;
  ActorEntry* oldest = nullptr;
  for (const auto& key : keys->second) {  // at most the tenant's max_actors
    ActorEntry& actor = actors_.at(key);
    if (actor.busy || !actor.waiting.empty()) continue;
    if (oldest == nullptr || actor.last_used < oldest->last_used) oldest = &actor;
  }
  return oldest;
}

ActorTable::Waiting ActorTable::waiting_of(const std::string& tenant) const {
  auto it = by_tenant_.find(tenant);
  return it == by_tenant_.end() ? Waiting{} : it->second;
}

void ActorTable::enqueue(ActorEntry& actor, Job& job) {
  actor.waiting.push_back(&job);
  count(job, true);
}

Job* ActorTable::next_call(ActorEntry& actor) {
  if (actor.waiting.empty()) return nullptr;
  Job* job = actor.waiting.front();
  actor.waiting.pop_front();
  count(*job, false);
  return job;
}

void ActorTable::remove_waiting(const Job& job) {
  ActorEntry* actor = find(job.actor);
  if (actor == nullptr) return;
  auto it = std::find(actor->waiting.begin(), actor->waiting.end(), &job);
  if (it == actor->waiting.end()) return;
  actor->waiting.erase(it);
  count(job, false);
}

std::vector<ActorEntry*> ActorTable::all() {
  std::vector<ActorEntry*> out;
  out.reserve(actors_.size());
  for (auto& [key, entry] : actors_) out.push_back(&entry);
  return out;
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

}  // namespace bridge::broker
