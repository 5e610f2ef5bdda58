#include "sentinel.hpp"

#include <hiredis/hiredis.h>

#include <fstream>
#include <sstream>
#include <stdexcept>

namespace bridge::testing {
namespace {

std::string redis_bin() {
  const char* set = std::getenv("BRIDGE_REDIS_SERVER");
  return set != nullptr && *set != '\0' ? set : BRIDGE_TEST_REDIS_SERVER;
}

// SENTINEL get-master-addr-by-name on one sentinel: the master's port, or 0.
int ask_sentinel(int sentinel_port) {
  timeval timeout{1, 0};
  redisContext* c = redisConnectWithTimeout("127.0.0.1", sentinel_port, timeout);
  if (c == nullptr || c->err) {
    if (c) redisFree(c);
    return 0;
  }
  auto* reply =
      static_cast<redisReply*>(redisCommand(c, "SENTINEL get-master-addr-by-name %s", SentinelGroup::kMaster));
  int port = 0;
  if (reply != nullptr && reply->type == REDIS_REPLY_ARRAY && reply->elements == 2)
    port = std::atoi(reply->element[1]->str);
  if (reply != nullptr) freeReplyObject(reply);
  redisFree(c);
  return port;
}

}  // namespace

SentinelGroup::SentinelGroup(const TempDir& dir) : dir_(dir) {
  servers_.push_back(std::make_unique<RedisServer>(dir));
  const std::string master = std::to_string(servers_[0]->port());
  for (int i = 0; i < 2; ++i)
    servers_.push_back(
        std::make_unique<RedisServer>(dir, "", "", "", std::vector<std::string>{"--replicaof", "127.0.0.1", master}));
  if (!eventually([&] { return servers_[0]->command({"WAIT", "2", "100"}) == "2"; }, std::chrono::seconds(10)))
    throw std::runtime_error("the replicas did not sync with the master");
  for (int i = 0; i < 3; ++i) {
    const int port = free_port();
    const std::string conf = dir.write(
        "sentinel-" + std::to_string(port) + ".conf",
        "port " + std::to_string(port) + "\nbind 127.0.0.1\ndir " + dir.path().string() + "\nsentinel monitor " +
            kMaster + " 127.0.0.1 " + master + " 2\nsentinel down-after-milliseconds " + kMaster +
            " 1000\nsentinel failover-timeout " + kMaster + " 3000\nsentinel parallel-syncs " + kMaster + " 1\n");
    log_files_.push_back((dir.path() / ("sentinel-" + std::to_string(port) + ".log")).string());
    sentinels_.push_back(
        std::make_unique<Process>(std::vector<std::string>{redis_bin(), conf, "--sentinel"}, log_files_.back()));
    sentinel_ports_.push_back(port);
  }
  // Ready once every sentinel names the master and has found the replica and the other sentinels.
  const bool ready = eventually(
      [&] {
        for (int port : sentinel_ports_) {
          if (ask_sentinel(port) != servers_[0]->port()) return false;
          timeval timeout{1, 0};
          redisContext* c = redisConnectWithTimeout("127.0.0.1", port, timeout);
          if (c == nullptr || c->err) {
            if (c) redisFree(c);
            return false;
          }
          auto* r = static_cast<redisReply*>(redisCommand(c, "SENTINEL master %s", kMaster));
          bool known = false;
          if (r != nullptr && r->type == REDIS_REPLY_ARRAY) {
            int replicas = -1, others = -1;
            for (std::size_t i = 0; i + 1 < r->elements; i += 2) {
              const std::string key = r->element[i]->str;
              if (key == "num-slaves") replicas = std::atoi(r->element[i + 1]->str);
              if (key == "num-other-sentinels") others = std::atoi(r->element[i + 1]->str);
            }
            known = replicas >= 2 && others >= 2;
          }
          if (r != nullptr) freeReplyObject(r);
          redisFree(c);
          if (!known) return false;
        }
        return true;
      },
      std::chrono::seconds(20));
  if (!ready) throw std::runtime_error("the sentinels did not come up:\n" + logs());
}

SentinelGroup::~SentinelGroup() {
  for (auto& s : sentinels_) s->kill_hard();
}

std::string SentinelGroup::url() const {
  std::string out = "sentinel://";
  for (std::size_t i = 0; i < sentinel_ports_.size(); ++i)
    out += (i ? "," : "") + std::string("127.0.0.1:") + std::to_string(sentinel_ports_[i]);
  return out + "/" + kMaster + "/0";
}

int SentinelGroup::master_port() const {
  for (int port : sentinel_ports_)
    if (const int master = ask_sentinel(port); master != 0) return master;
  return 0;
}

RedisServer& SentinelGroup::server(int port) {
  for (auto& s : servers_)
    if (s->port() == port) return *s;
  throw std::runtime_error("no redis-server of the group on port " + std::to_string(port));
}

bool SentinelGroup::kill_master_and_wait_for_failover(std::chrono::milliseconds timeout, int signo) {
  const int old_master = master_port();
  if (signo == SIGKILL) {
    server(old_master).process().kill_hard();
  } else {
    server(old_master).process().signal(signo);
  }
  return eventually(
      [&] {
        // ROLE is [master, offset, replicas] on a master, five elements on a replica.
        const int now = master_port();
        return now != 0 && now != old_master && server(now).command({"ROLE"}) == "<array of 3>";
      },
      timeout);
}

std::string SentinelGroup::logs() const { return concatenated_logs(log_files_); }

}  // namespace bridge::testing
