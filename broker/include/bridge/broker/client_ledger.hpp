#pragma once
/// @file ClientLedger: the bytes of results the broker holds for each client, and clients that stall.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include <zmq.hpp>

namespace bridge::broker {

/// A result is held by the broker from the moment it is sent on the client socket until libzmq has
/// written it to the client's connection (or the connection is gone). A client that does not read
/// leaves its results in the broker's memory; the ledger counts those bytes per client, exactly, by
/// wrapping each frame sent so that libzmq's release of it (on its I/O thread) takes the bytes off.
///
/// Over `max_unread_bytes`, a client's new jobs are refused (the broker asks over_budget()), and a
/// result that would take it past the budget is not delivered (withhold()). A client
/// over it for `stall` is dropped: sweep() names it once; the broker cancels its jobs and sends it
/// nothing more (dropped()) until what it holds has drained to nothing, when it starts afresh.
/// The broker's loop thread only, except the releases, which are atomic.
class ClientLedger {
 public:
  using Clock = std::chrono::steady_clock;
  struct Options {
    std::uint64_t max_unread_bytes = 256ull << 20;
    std::chrono::milliseconds stall{30000};
    /// Bytes all the clients of one tenant may hold together; 0 = no such bound. Without it, a
    /// tenant with N connections could hold N times max_unread_bytes of the broker's memory.
    std::uint64_t max_unread_tenant_bytes = 0;
  };

  explicit ClientLedger(Options options);

  /// `frame`, with the same bytes (not copied), counted against `client` until libzmq frees it.
  zmq::message_t counted(const std::string& client, zmq::message_t frame);
  /// The same for every frame of one message (one look-up of the client).
  void count_all(const std::string& client, std::vector<zmq::message_t>& frames);

  std::uint64_t unread_bytes(const std::string& client) const;
  /// Counts what `client` holds from now on towards `tenant` as well (the first tenant named stays
  /// while the client holds anything; a client that holds nothing is forgotten by sweep()).
  void belongs_to(const std::string& client, const std::string& tenant);
  /// What every client of `tenant` holds together, and whether it passes max_unread_tenant_bytes:
  /// then the tenant's new jobs are refused, whichever of its clients sends them.
  std::uint64_t tenant_unread_bytes(const std::string& tenant) const;
  bool tenant_over_budget(const std::string& tenant) const;
  /// Over its budget: it holds more than max_unread_bytes, or a result was withheld from it and it
  /// still holds over half the budget.
  bool over_budget(const std::string& client) const;
  /// True if a result of `bytes` must not be delivered: it would take the client past its budget.
  /// Never for a client that holds nothing, so that any one result can be delivered: a client holds
  /// at most the budget or one result, whatever number of jobs it has in flight. A withheld result
  /// puts the client over its budget (new jobs refused, the stall clock running) until it holds no
  /// more than half of it.
  bool withhold(const std::string& client, std::uint64_t bytes);
  bool dropped(const std::string& client) const;
  /// Bytes held for every client together (a gauge).
  std::uint64_t total_unread() const;

  /// Clients over their budget for longer than `stall`, each named once (they are dropped from
  /// then on); forgets clients that hold nothing (a dropped one with them).
  std::vector<std::string> sweep(Clock::time_point now);

  const Options& options() const { return options_; }

 private:
  struct Account {
    std::shared_ptr<std::atomic<std::uint64_t>> held = std::make_shared<std::atomic<std::uint64_t>>(0);
    std::shared_ptr<std::atomic<std::uint64_t>> tenant_held;  ///< its tenant's total; null until belongs_to
    Clock::time_point over_since{};  ///< when it passed the budget; epoch while under it
    bool withheld = false;           ///< a result was withheld since it last held under half the budget
    bool dropped = false;
  };

  static zmq::message_t wrap(Account& account, zmq::message_t frame);
  /// Over the budget; clears `withheld` once the client holds no more than half of it.
  bool over(Account& account, std::uint64_t held) const;

  Options options_;
  std::unordered_map<std::string, Account> accounts_;
  std::unordered_map<std::string, std::shared_ptr<std::atomic<std::uint64_t>>> tenants_;
};

}  // namespace bridge::broker
