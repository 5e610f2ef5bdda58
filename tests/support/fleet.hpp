#pragma once
// Test support: a real fleet on 127.0.0.1 — redis-server, bridge-broker and bridge-worker processes
// on free ports, in a temporary directory, torn down by the destructor.

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <zmq.hpp>

#include "bridge/client.hpp"
#include "process.hpp"

namespace bridge::testing {

/// Debian's redis-server on a free loopback port, without persistence.
class RedisServer {
 public:
  /// `acl_file` non-empty: redis-server --aclfile it; this object's own commands then authenticate
  /// as `admin_user` / `admin_password` (a user the file must define).
  /// `extra_args`: more redis-server flags (`--replicaof HOST PORT`, say).
  explicit RedisServer(const TempDir& dir, const std::string& acl_file = "", std::string admin_user = "",
                       std::string admin_password = "", const std::vector<std::string>& extra_args = {});
  int port() const { return port_; }
  std::string url() const { return "redis://" + url_user_ + "127.0.0.1:" + std::to_string(port_) + "/0"; }
  /// The URL brokers get names this ACL user (`redis://USER@...`; the password comes from a file).
  void set_url_user(const std::string& user) { url_user_ = user + "@"; }
  /// A command's reply as text (integers as decimal), via a blocking hiredis connection.
  std::string command(const std::vector<std::string>& args) const;
  /// The sum of a hash's values as text ("0" for a missing hash): a tenant's leases over every
  /// broker process, e.g. hash_total("bridge:inflight:default").
  std::string hash_total(const std::string& key) const;
  Process& process() { return *process_; }
  /// Kills redis-server (SIGKILL) and starts it again on the same port: without persistence, it
  /// comes back empty, as a Redis whose data was not saved does.
  void restart();

 private:
  bool start(const std::vector<std::string>& argv);

  int port_;
  std::vector<std::string> argv_;
  std::string log_path_;
  std::unique_ptr<Process> process_;
  std::string admin_user_, admin_password_, url_user_;
};

struct FleetOptions {
  int workers = 2;
  std::uint32_t slots = 2;
  std::uint32_t heartbeat_ms = 100;  ///< fast liveness for tests
  std::string tenants_yaml = "defaults:\n  max_inflight_jobs: 1000\ntenants:\n  default: {}\n";
  std::string broker_yaml_extra;      ///< appended to the generated broker.yaml
  std::string worker_yaml_extra;      ///< appended to the generated worker.yaml
  std::string worker_device = "cpu";  ///< the workers' --device (tests are about the fleet, not the GPU)
  int broker_open_files = 0;          ///< >0: the broker runs under this hard limit on open files (ulimit -n)
  /// Redis runs with config/redis-acl.conf (the broker's user gets `redis_password`), and the broker
  /// connects as user gpubridge with its password from a file (redis_password_file).
  bool redis_acl = false;
  std::string redis_password = "broker-secret";  ///< what the broker's password file says (redis_acl)
  /// Non-empty: the brokers use this Redis (a SentinelGroup's url(), say); the fleet's own then
  /// runs unused.
  std::string redis_url;
  /// true: security: curve, as a fleet runs for real. Keys are made in the fleet's directory:
  /// broker, worker (enrolled in workers.yaml), operator (operator_keys), and one per tenant of
  /// tenants_yaml (listed under it). false: security: none.
  bool secure = true;
};

class Fleet {
 public:
  explicit Fleet(FleetOptions options = {});
  ~Fleet();

  /// Starts another broker on its own ports sharing this fleet's Redis and tenants.
  std::unique_ptr<Process> start_broker(int frontend_port, int backend_port, const std::string& id);
  /// Kills the broker (SIGKILL) and starts a new one on the same ports, Redis and config.
  void restart_broker();
  /// Starts a worker connected to this fleet's broker (or to `brokers`, a list); returns its index.
  std::size_t add_worker(std::uint32_t slots, const std::string& brokers = "");
  /// Kills worker `index` (SIGKILL) and starts a new process under the same id: a new incarnation.
  void restart_worker(std::size_t index, std::uint32_t slots);

  std::string frontend() const { return tcp_endpoint(frontend_port_); }
  std::string backend() const { return tcp_endpoint(backend_port_); }
  Process& broker() { return *broker_; }
  Process& worker(std::size_t i) { return *workers_.at(i); }
  RedisServer& redis() { return *redis_; }
  const TempDir& dir() const { return dir_; }

  /// Options of a client with `tenant`'s key (made on first use; enrolled only for tenants of
  /// tenants_yaml or write_tenants), or the operator's key for tenant "operator".
  Client::Options client_options(const std::string& tenant = "default") const;
  /// Writes tenants.yaml with each tenant's key listed under it (text that does not parse as YAML
  /// is written as it is, for tests of refused edits), and the operator key.
  void write_tenants(const std::string& yaml) const;
  /// CURVE for a raw socket (before connect): as `tenant`'s client, or as the enrolled worker.
  void secure_client_socket(zmq::socket_t& socket, const std::string& tenant = "default") const;
  void secure_worker_socket(zmq::socket_t& socket) const;
  /// The key file of `name` in the fleet's directory, made on first use.
  std::string key_file(const std::string& name) const;
  std::string broker_public_key_file() const { return (dir_.path() / "broker.pub").string(); }
  bool secure() const { return options_.secure; }
  /// Waits until the broker's status satisfies `holds`.
  bool wait_for_status(const std::function<bool(const FleetStatus&)>& holds,
                       std::chrono::milliseconds timeout = std::chrono::seconds(5));
  /// Waits until the broker reports `count` workers.
  bool wait_for_workers(std::size_t count, std::chrono::milliseconds timeout = std::chrono::seconds(10));
  /// Waits until the broker reports `count` jobs in flight on workers.
  bool wait_for_inflight(std::uint32_t count, std::chrono::milliseconds timeout = std::chrono::seconds(5));
  /// Every process's log, for failure messages.
  std::string logs() const;

 private:
  std::unique_ptr<Process> start_worker(std::size_t index, std::uint32_t slots, const std::string& log_name,
                                        const std::string& brokers = "");

  FleetOptions options_;
  TempDir dir_;
  std::unique_ptr<RedisServer> redis_;
  int frontend_port_;
  int backend_port_;
  std::string broker_config_;
  std::string worker_config_;
  std::unique_ptr<Process> broker_;
  int broker_restarts_ = 0;
  std::vector<std::unique_ptr<Process>> workers_;
  std::vector<std::string> log_files_;
};

}  // namespace bridge::testing
