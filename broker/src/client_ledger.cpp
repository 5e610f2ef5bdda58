#include "bridge/broker/client_ledger.hpp"

namespace bridge::broker {
namespace {

// Keeps the original frame alive while libzmq sends its bytes, and takes them off the ledger when
// libzmq lets go (zmq_msg_init_data's free function, called on one of libzmq's I/O threads).
struct Held {
  zmq::message_t frame;
  std::shared_ptr<std::atomic<std::uint64_t>> counter;
};

void release_held(void* /*data*/, void* hint) {
  auto* held = static_cast<Held*>(hint);
  held->counter->fetch_sub(held->frame.size(), std::memory_order_relaxed);
  delete held;
}

}  // namespace

ClientLedger::ClientLedger(Options options) : options_(options) {}

zmq::message_t ClientLedger::counted(const std::string& client, zmq::message_t frame) {
  return wrap(accounts_[client], std::move(frame));
}

void ClientLedger::count_all(const std::string& client, std::vector<zmq::message_t>& frames) {
  Account& account = accounts_[client];
  for (auto& frame : frames) frame = wrap(account, std::move(frame));
}

zmq::message_t ClientLedger::wrap(Account& account, zmq::message_t frame) {
  if (frame.size() == 0) return frame;
  auto held = std::make_unique<Held>(Held{std::move(frame), account.held});
  const std::size_t size = held->frame.size();
  account.held->fetch_add(size, std::memory_order_relaxed);
  void* data = held->frame.data();
  zmq::message_t out(data, size, &release_held, held.get());  // from here on libzmq frees `held`
  held.release();
  return out;
}

std::uint64_t ClientLedger::unread_bytes(const std::string& client) const {
  auto it = accounts_.find(client);
  return it == accounts_.end() ? 0 : it->second.held->load(std::memory_order_relaxed);
}

bool ClientLedger::over(Account& account, std::uint64_t held) const {
  if (account.withheld && held <= options_.max_unread_bytes / 2) account.withheld = false;
  return held > options_.max_unread_bytes || account.withheld;
}

bool ClientLedger::over_budget(const std::string& client) const {
  auto it = accounts_.find(client);
  if (it == accounts_.end()) return false;
  const std::uint64_t held = it->second.held->load(std::memory_order_relaxed);
  return held > options_.max_unread_bytes || (it->second.withheld && held > options_.max_unread_bytes / 2);
}

bool ClientLedger::withhold(const std::string& client, std::uint64_t bytes) {
  auto it = accounts_.find(client);
  if (it == accounts_.end()) return false;
  const std::uint64_t held = it->second.held->load(std::memory_order_relaxed);
  if (held == 0 || held + bytes <= options_.max_unread_bytes) return false;
  it->second.withheld = true;
  return true;
}

bool ClientLedger::dropped(const std::string& client) const {
  auto it = accounts_.find(client);
  return it != accounts_.end() && it->second.dropped;
}

std::uint64_t ClientLedger::total_unread() const {
  std::uint64_t total = 0;
  for (const auto& [client, account] : accounts_) total += account.held->load(std::memory_order_relaxed);
  return total;
}

std::vector<std::string> ClientLedger::sweep(Clock::time_point now) {
  std::vector<std::string> stalled;
  for (auto it = accounts_.begin(); it != accounts_.end();) {
    Account& account = it->second;
    const std::uint64_t held = account.held->load(std::memory_order_relaxed);
    if (held == 0) {  // nothing unread: nothing to remember (a new frame makes a new account)
      it = accounts_.erase(it);
      continue;
    }
    if (!over(account, held)) {
      account.over_since = {};
    } else if (account.over_since == Clock::time_point{}) {
      account.over_since = now;
    } else if (!account.dropped && now - account.over_since >= options_.stall) {
      account.dropped = true;
      stalled.push_back(it->first);
    }
    ++it;
  }
  return stalled;
}

}  // namespace bridge::broker
