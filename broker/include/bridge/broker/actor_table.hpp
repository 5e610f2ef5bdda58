#pragma once
/// @file ActorTable: the actors a broker is serving, their turn queues and activations.

#include <cstdint>
#include <deque>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "bridge/broker/job.hpp"

namespace bridge::broker {

/// One actor this broker serves. Calls run one at a time in arrival order: the call holding the
/// turn is admitted, (re)activated if needed, dispatched, and written through to Redis before the
/// next one starts.
struct ActorEntry {
  std::string key;  ///< "<tenant>/<actor id>"
  std::string tenant;
  std::string actor_id;
  std::string worker;             ///< the worker holding its activation; empty: none
  std::uint64_t incarnation = 0;  ///< of that worker process (a restarted worker lost it)
  std::uint64_t version = 0;      ///< state version in Redis as this broker last saw it
  bool busy = false;              ///< a call holds the turn
  /// Another broker waited for the actor while this one held it: no claim before this time, so that
  /// the other one gets a turn too.
  Clock::time_point yield_until{};
  /// The token of this broker's claim on the actor's turn, fleet-wide (empty: none). A call that
  /// ends with another of this broker's calls waiting leaves the claim to it.
  std::string claim;
  bool claim_wanted = false;              ///< another broker asked for the turn (seen at the last renewal)
  bool unclaiming = false;                ///< the last call's claim is being given back
  std::uint64_t claim_after_unclaim = 0;  ///< the call that claims once that is done (its key; 0: none)
  std::deque<Job*> waiting;               ///< calls behind it, in arrival order (through ActorTable only)
  Clock::time_point last_used{};
};

/// Not thread-safe: the broker's loop thread only.
class ActorTable {
 public:
  /// The entry of `key`, created if new.
  ActorEntry& get(const std::string& tenant, const std::string& actor_id);
  ActorEntry* find(const std::string& key);
  void erase(const std::string& key);
  /// Entries of one tenant.
  std::size_t count_of(const std::string& tenant) const;
  /// The tenant's least recently used entry without a call, or nullptr if every one has a call.
  ActorEntry* least_recently_used_idle(const std::string& tenant);

  /// Queues a call behind the actor's others.
  void enqueue(ActorEntry& actor, Job& job);
  /// The actor's oldest waiting call, removed; nullptr if none.
  Job* next_call(ActorEntry& actor);
  /// Takes a waiting call out of its actor's queue (deadline, cancel); a no-op if it is not there.
  void remove_waiting(const Job& job);

  /// Marks `key` for a pump_ready() pass (its turn was released or a call arrived).
  void wake(const std::string& key) { ready_.push_back(key); }
  /// Keys woken since the last call.
  std::vector<std::string> take_ready() { return std::exchange(ready_, {}); }

  /// Entries without a call, idle since before `cutoff`.
  std::vector<std::string> idle_since(Clock::time_point cutoff) const;
  std::size_t size() const { return actors_.size(); }
  /// Every entry, in no order.
  std::vector<ActorEntry*> all();
  /// Calls waiting behind their actors' turns, all actors together (kept as a count: the broker
  /// reads it for every request).
  std::size_t waiting() const { return waiting_; }

  /// One tenant's calls waiting behind their actors' turns: they are not admitted yet (quota is
  /// asked when a call's turn comes), so the broker bounds them by the tenant's quota itself.
  struct Waiting {
    std::uint64_t calls = 0;
    std::uint64_t bytes = 0;  ///< their payloads, held in the broker
  };
  Waiting waiting_of(const std::string& tenant) const;

 private:
  void count(const Job& job, bool added);

  std::unordered_map<std::string, ActorEntry> actors_;
  std::unordered_map<std::string, std::unordered_set<std::string>> keys_by_tenant_;
  std::vector<std::string> ready_;
  std::size_t waiting_ = 0;
  std::unordered_map<std::string, Waiting> by_tenant_;
};

}  // namespace bridge::broker
