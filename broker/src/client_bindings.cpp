#include "bridge/broker/client_bindings.hpp"

namespace bridge::broker {

bool ClientBindings::seen(const std::string& client, int fd, const std::string& key) {
  auto [it, added] = by_client_.try_emplace(client);
  Binding& b = it->second;
  if (!added && b.key != key) {
    if (b.jobs > 0) return false;
    b.key = key;  // the other key's jobs are all answered: the id is free to take
  }
  if (added) b.key = key;
  if (b.fd != fd) {
    if (b.fd >= 0) client_on_fd_.erase(b.fd);
    // A descriptor carries one connection, so one routing id: an entry left on it is stale.
    if (auto old = client_on_fd_.find(fd); old != client_on_fd_.end() && old->second != client) {
      auto stale = by_client_.find(old->second);
      client_on_fd_.erase(old);
      if (stale != by_client_.end()) {
        stale->second.fd = -1;
        erase_if_idle(stale);
      }
    }
    b.fd = fd;
    client_on_fd_[fd] = client;
  }
  return true;
}

void ClientBindings::disconnected(int fd) {
  auto on_fd = client_on_fd_.find(fd);
  if (on_fd == client_on_fd_.end()) return;
  auto it = by_client_.find(on_fd->second);
  client_on_fd_.erase(on_fd);
  if (it == by_client_.end()) return;
  it->second.fd = -1;
  erase_if_idle(it);
}

void ClientBindings::job_added(const std::string& client) {
  if (auto it = by_client_.find(client); it != by_client_.end()) ++it->second.jobs;
}

void ClientBindings::job_ended(const std::string& client) {
  auto it = by_client_.find(client);
  if (it == by_client_.end() || it->second.jobs == 0) return;
  --it->second.jobs;
  erase_if_idle(it);
}

bool ClientBindings::deliverable(const std::string& client, const std::string& key) const {
  auto it = by_client_.find(client);
  return it != by_client_.end() && it->second.fd >= 0 && it->second.key == key;
}

void ClientBindings::erase_if_idle(std::unordered_map<std::string, Binding>::iterator it) {
  if (it->second.fd < 0 && it->second.jobs == 0) by_client_.erase(it);
}

}  // namespace bridge::broker
