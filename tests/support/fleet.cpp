#include "fleet.hpp"

#include <filesystem>

#include <yaml-cpp/yaml.h>

#include "bridge/core/curve.hpp"

#include <hiredis/hiredis.h>
#include <signal.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace bridge::testing {
namespace {
// A bundle on another machine (scripts/gpu-verify) sets these; a build tree uses its own paths.
std::string program(const char* variable, const char* built) {
  const char* set = std::getenv(variable);
  return set != nullptr && *set != '\0' ? set : built;
}
std::string broker_bin() { return program("BRIDGE_BROKER_BIN", BRIDGE_TEST_BROKER_BIN); }
std::string worker_bin() { return program("BRIDGE_WORKER_BIN", BRIDGE_TEST_WORKER_BIN); }
std::string redis_bin() { return program("BRIDGE_REDIS_SERVER", BRIDGE_TEST_REDIS_SERVER); }
}  // namespace

RedisServer::RedisServer(const TempDir& dir, const std::string& acl_file, std::string admin_user,
                         std::string admin_password, const std::vector<std::string>& extra_args)
    : admin_user_(std::move(admin_user)), admin_password_(std::move(admin_password)) {
  // A port found free can be taken by another process before redis-server binds it: try again.
  for (int attempt = 0; attempt < 3; ++attempt) {
    port_ = free_port();
    argv_ = {redis_bin(), "--port", std::to_string(port_), "--bind", "127.0.0.1", "--save", "", "--appendonly",
             "no",        "--dir",  dir.path().string()};
    if (!acl_file.empty()) argv_.insert(argv_.end(), {"--aclfile", acl_file});
    argv_.insert(argv_.end(), extra_args.begin(), extra_args.end());
    log_path_ = (dir.path() / ("redis-" + std::to_string(port_) + ".log")).string();
    if (start(argv_)) return;
  }
  throw std::runtime_error("redis-server did not start (last port " + std::to_string(port_) + "):\n" + process_->log());
}

bool RedisServer::start(const std::vector<std::string>& argv) {
  process_ = std::make_unique<Process>(argv, log_path_);
  return eventually([&] { return command({"PING"}) == "PONG" || !process_->running(); }, std::chrono::seconds(10)) &&
         process_->running();
}

void RedisServer::restart() {
  process_->kill_hard();
  if (!start(argv_))
    throw std::runtime_error("redis-server did not start again on port " + std::to_string(port_) + ":\n" +
                             process_->log());
}

std::string RedisServer::command(const std::vector<std::string>& args) const {
  timeval timeout{2, 0};
  redisContext* c = redisConnectWithTimeout("127.0.0.1", port_, timeout);
  if (c == nullptr || c->err) {
    if (c) redisFree(c);
    return "<unreachable>";
  }
  if (!admin_user_.empty()) {
    auto* auth = static_cast<redisReply*>(redisCommand(c, "AUTH %s %s", admin_user_.c_str(), admin_password_.c_str()));
    if (auth != nullptr) freeReplyObject(auth);
  }
  std::vector<const char*> argv;
  std::vector<std::size_t> lengths;
  for (const auto& a : args) {
    argv.push_back(a.data());
    lengths.push_back(a.size());
  }
  auto* reply =
      static_cast<redisReply*>(redisCommandArgv(c, static_cast<int>(args.size()), argv.data(), lengths.data()));
  std::string out = "<no reply>";
  if (reply != nullptr) {
    if (reply->type == REDIS_REPLY_INTEGER)
      out = std::to_string(reply->integer);
    else if (reply->type == REDIS_REPLY_NIL)
      out = "<nil>";
    else if (reply->str != nullptr)
      out = std::string(reply->str, reply->len);
    else if (reply->type == REDIS_REPLY_ARRAY)
      out = "<array of " + std::to_string(reply->elements) + ">";
    freeReplyObject(reply);
  }
  redisFree(c);
  return out;
}

std::string RedisServer::hash_total(const std::string& key) const {
  return command({"EVAL",
                  "local s = 0 for _, v in ipairs(redis.call('HVALS', KEYS[1])) do s = s + tonumber(v) end return s",
                  "1", key});
}

Fleet::Fleet(FleetOptions options) : options_(std::move(options)) {
  std::string redis_extra;
  if (options_.redis_acl) {
    // The shipped ACL file, with the broker user's password added after `on` (as compose does) and
    // an admin user for this harness's own commands.
    std::ifstream shipped(BRIDGE_SOURCE_DIR "/config/redis-acl.conf");
    std::stringstream text;
    text << shipped.rdbuf();
    std::string acl = text.str();
    const std::string marker = "user gpubridge on ";
    const auto at = acl.find(marker);
    if (at == std::string::npos) throw std::runtime_error("config/redis-acl.conf has no 'user gpubridge on' line");
    acl.insert(at + marker.size(), ">" + options_.redis_password + " ");
    acl += "user admin on >admin-secret ~* &* +@all\n";
    const std::string acl_file = dir_.write("users.acl", acl);
    redis_ = std::make_unique<RedisServer>(dir_, acl_file, "admin", "admin-secret");
    redis_->set_url_user("gpubridge");
    dir_.write("redis-password", options_.redis_password + "\n");
    redis_extra = "redis_password_file: redis-password\n";
  } else {
    redis_ = std::make_unique<RedisServer>(dir_);
  }
  frontend_port_ = free_port();
  backend_port_ = free_port();
  const std::string heartbeat = std::to_string(options_.heartbeat_ms);
  std::string broker_security = "security: none\n", worker_security;
  if (options_.secure) {
    core::write_key_files((dir_.path() / "broker").string());
    const std::string worker_key = core::read_key_file(key_file("worker"), true).public_key;
    dir_.write("workers.yaml", "keys:\n  - \"" + worker_key + "\"\n");
    broker_security = "security: curve\nsecret_key_file: broker.key\nworkers_file: workers.yaml\n";
    worker_security = "key_file: worker.key\nbroker_key_file: broker.pub\n";
  }
  write_tenants(options_.tenants_yaml);
  broker_config_ = dir_.write("broker.yaml", "heartbeat_ms: " + heartbeat + "\nliveness: 3\nlog_level: debug\n" +
                                                 "tenants_file: tenants.yaml\n" + broker_security + redis_extra +
                                                 options_.broker_yaml_extra);
  worker_config_ =
      dir_.write("worker.yaml", "heartbeat_ms: " + heartbeat + "\nliveness: 5\nthreads: 2\nlog_level: debug\n" +
                                    worker_security + options_.worker_yaml_extra);
  broker_ = start_broker(frontend_port_, backend_port_, "broker-a");
  // As for Redis: if a port was taken meanwhile, the broker exits at once; start it on new ports.
  for (int attempt = 0; attempt < 3 && broker_->wait(std::chrono::milliseconds(200)).has_value(); ++attempt) {
    frontend_port_ = free_port();
    backend_port_ = free_port();
    broker_ = start_broker(frontend_port_, backend_port_, "broker-a");
  }
  for (int i = 0; i < options_.workers; ++i) add_worker(options_.slots);
  if (!wait_for_workers(static_cast<std::size_t>(options_.workers)))
    throw std::runtime_error("fleet did not come up:\n" + logs());
}

Fleet::~Fleet() {
  for (auto& w : workers_) w->kill_hard();
  if (broker_) broker_->kill_hard();
}

std::unique_ptr<Process> Fleet::start_broker(int frontend_port, int backend_port, const std::string& id) {
  const std::string log = (dir_.path() / (id + ".log")).string();
  log_files_.push_back(log);
  std::vector<std::string> argv{broker_bin(),
                                "--config",
                                broker_config_,
                                "--frontend",
                                tcp_endpoint(frontend_port),
                                "--backend",
                                tcp_endpoint(backend_port),
                                "--redis",
                                options_.redis_url.empty() ? redis_->url() : options_.redis_url,
                                "--id",
                                id};
  if (options_.broker_open_files > 0)  // the shell sets the limit, then becomes the broker
    argv.insert(argv.begin(), {"/bin/sh", "-c",
                               "ulimit -n " + std::to_string(options_.broker_open_files) + " && exec \"$0\" \"$@\""});
  return std::make_unique<Process>(argv, log);
}

void Fleet::restart_broker() {
  broker_->kill_hard();
  broker_ = start_broker(frontend_port_, backend_port_, "broker-" + std::to_string(++broker_restarts_));
}

std::size_t Fleet::add_worker(std::uint32_t slots, const std::string& brokers) {
  const std::size_t index = workers_.size();
  workers_.push_back(start_worker(index, slots, "worker-" + std::to_string(index) + ".log", brokers));
  return index;
}

void Fleet::restart_worker(std::size_t index, std::uint32_t slots) {
  workers_.at(index)->kill_hard();
  workers_.at(index) = start_worker(index, slots, "worker-" + std::to_string(index) + "-restarted.log");
}

std::unique_ptr<Process> Fleet::start_worker(std::size_t index, std::uint32_t slots, const std::string& log_name,
                                             const std::string& brokers) {
  const std::string log = (dir_.path() / log_name).string();
  log_files_.push_back(log);
  return std::make_unique<Process>(
      std::vector<std::string>{worker_bin(), "--config", worker_config_, "--broker",
                               brokers.empty() ? backend() : brokers, "--slots", std::to_string(slots), "--id",
                               "worker-" + std::to_string(index), "--device", options_.worker_device},
      log);
}

Client::Options Fleet::client_options(const std::string& tenant) const {
  Client::Options o;
  o.broker = frontend();
  o.tenant = tenant == "operator" ? "" : tenant;
  o.timeout = std::chrono::seconds(20);
  if (options_.secure) {
    o.key_file = key_file(tenant);
    o.broker_key_file = broker_public_key_file();
  }
  return o;
}

std::string Fleet::key_file(const std::string& name) const {
  const std::string prefix = (dir_.path() / name).string();
  if (!std::filesystem::exists(prefix + ".key")) core::write_key_files(prefix);
  return prefix + ".key";
}

void Fleet::write_tenants(const std::string& yaml) const {
  if (!options_.secure) {
    dir_.write("tenants.yaml", yaml);
    return;
  }
  YAML::Node root;
  try {
    root = YAML::Load(yaml);
  } catch (const YAML::Exception&) {
    dir_.write("tenants.yaml", yaml);
    return;
  }
  if (!root.IsMap() || !root["tenants"] || !root["tenants"].IsMap()) {
    dir_.write("tenants.yaml", yaml);
    return;
  }
  for (auto entry : root["tenants"]) {
    const std::string name = entry.first.as<std::string>();
    if (!entry.second.IsMap() || entry.second["keys"]) continue;
    if (name.find('/') != std::string::npos) continue;  // not a valid tenant name: the broker refuses the file anyway
    entry.second["keys"].push_back(core::read_key_file(key_file(name), true).public_key);
  }
  if (!root["operator_keys"])
    root["operator_keys"].push_back(core::read_key_file(key_file("operator"), true).public_key);
  YAML::Emitter out;
  out << root;
  dir_.write("tenants.yaml", std::string(out.c_str()) + "\n");
}

void Fleet::secure_client_socket(zmq::socket_t& socket, const std::string& tenant) const {
  if (!options_.secure) return;
  core::apply_curve_client(socket, core::read_client_keys(key_file(tenant), broker_public_key_file(), false));
}

void Fleet::secure_worker_socket(zmq::socket_t& socket) const {
  if (!options_.secure) return;
  core::apply_curve_client(socket, core::read_client_keys(key_file("worker"), broker_public_key_file(), false));
}

bool Fleet::wait_for_status(const std::function<bool(const FleetStatus&)>& holds, std::chrono::milliseconds timeout) {
  auto options = client_options("operator");  // enrolled whatever tenants a test configures
  options.timeout = std::chrono::milliseconds(500);
  Client client(options);
  return eventually(
      [&] {
        FleetStatus fleet;
        return client.status(fleet).is_ok() && holds(fleet);
      },
      timeout);
}

bool Fleet::wait_for_workers(std::size_t count, std::chrono::milliseconds timeout) {
  return wait_for_status([count](const FleetStatus& f) { return f.workers.size() == count; }, timeout);
}

bool Fleet::wait_for_inflight(std::uint32_t count, std::chrono::milliseconds timeout) {
  return wait_for_status([count](const FleetStatus& f) { return f.inflight_jobs == count; }, timeout);
}

std::string Fleet::logs() const { return concatenated_logs(log_files_); }

}  // namespace bridge::testing
