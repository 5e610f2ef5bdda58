#include "bridge/broker/client_ledger.hpp"

namespace bridge::broker {
namespace {

// Keeps the original frame alive while libzmq sends its bytes, and takes them off the ledger when
// libzmq lets go (zmq_msg_init_data's free function, called on one of libzmq's I/O threads).
struct Held {
  zmq::message_t frame;
  std::shared_ptr<std::atomic<std::uint64_t>> counter;
  std::shared_ptr<std::atomic<std::uint64_t>> tenant_counter;  // may be null
};

void release_held(void* /*data*/, void* hint) {
  auto* held = static_cast<Held*>(hint);
  held->counter->fetch_sub(held->frame.size(), std::memory_order_relaxed);
  if (held->tenant_counter) held->tenant_counter->fetch_sub(held->frame.size(), std::memory_order_relaxed);
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
  auto held = std::make_unique<Held>(Held{std::move(frame), account.held, account.tenant_held});
  const std::size_t size = held->frame.size();
  account.held->fetch_add(size, std::memory_order_relaxed);
  if (account.tenant_held) account.tenant_held->fetch_add(size, std::memory_order_relaxed);
  void* data = held->frame.data();
  zmq::message_t out(data, size, &release_held, held.get());  // from here on libzmq frees `held`
  held.release();
  return out;
}

std::uint64_t ClientLedger::unread_bytes(const std::string& client) const {
  auto it = accounts_.find(client);
  return it == accounts_.end() ? 0 : it->second.held->load(std::memory_order_relaxed);
}

void ClientLedger::belongs_to(const std::string& client, const std::string& tenant) {
  Account& account = accounts_[client];
  if (account.tenant_held) return;
  auto& total = tenants_[tenant];
  if (!total) total = std::make_shared<std::atomic<std::uint64_t>>(0);
  account.tenant_held = total;
}

std::uint64_t ClientLedger::tenant_unread_bytes(const std::string& tenant) const {
  auto it = tenants_.find(tenant);
  return it == tenants_.end() ? 0 : it->second->load(std::memory_order_relaxed);
}

bool ClientLedger::tenant_over_budget(const std::string& tenant) const {
  return options_.max_unread_tenant_bytes > 0 && tenant_unread_bytes(tenant) > options_.max_unread_tenant_bytes;
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
  // A tenant total nothing refers to any more (its clients' accounts are gone) holds nothing.
  for (auto it = tenants_.begin(); it != tenants_.end();)
    it = it->second.use_count() == 1 && it->second->load(std::memory_order_relaxed) == 0 ? tenants_.erase(it)
                                                                                         : std::next(it);
  return stalled;
}

}  // namespace bridge::broker
