// CURVE, keys and isolation across real processes: each attack a tenant or a process on the network
// could make before keys existed, and the answer it gets now (docs/security.md).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <mutex>
#include <thread>

#include <gtest/gtest.h>
#include <httplib.h>

#include <zmq_addon.hpp>

#include "bridge/actor.hpp"
#include "bridge/core/curve.hpp"
#include "bridge/core/job_codec.hpp"
#include "bridge/core/wire.hpp"
#include "fleet.hpp"

namespace bridge::testing {
namespace {

using std::chrono::milliseconds;

const char* kTwoTenants =
    "defaults:\n  max_inflight_jobs: 100\ntenants:\n  alice: {}\n  bob:\n    rate: 2\n    burst: 2\n";
const JobRequest kAdd{.kernel = "vector_add",
                      .inputs = {Tensor::vector<float>({1, 2}), Tensor::vector<float>({10, 20})}};

FleetOptions two_tenants() {
  FleetOptions o;
  o.workers = 1;
  o.tenants_yaml = kTwoTenants;
  o.broker_yaml_extra = "tenants_reload_ms: 100\n";
  return o;
}

TEST(Auth, AKeyNotListedForAnyTenantIsUnauthenticated) {
  Fleet fleet(two_tenants());
  Client stranger(fleet.client_options("stranger"));  // a key of its own, listed nowhere
  JobResult r = stranger.run(kAdd);
  EXPECT_EQ(r.status.code(), StatusCode::kUnauthenticated) << r.status.to_string();
  EXPECT_NE(r.status.message().find("the broker refused this key"), std::string::npos) << r.status.message();
  EXPECT_LT(r.timings.total.count(), 5000000) << "answered at the handshake, not at the timeout";
  FleetStatus status;  // control requests are answered too, not left to time out
  EXPECT_EQ(stranger.status(status).code(), StatusCode::kUnauthenticated);
}

TEST(Auth, AClientWithoutKeysGetsNothingThrough) {
  Fleet fleet(two_tenants());
  Client::Options plain = fleet.client_options("alice");
  plain.key_file.clear();
  plain.broker_key_file.clear();
  plain.timeout = milliseconds(1500);
  ::unsetenv("GPUBRIDGE_KEY_FILE");
  ::unsetenv("GPUBRIDGE_BROKER_KEY_FILE");
  Client client(plain);
  JobResult r = client.run(kAdd);
  EXPECT_EQ(r.status.code(), StatusCode::kUnauthenticated) << r.status.to_string();
  EXPECT_NE(r.status.message().find("requires CURVE keys"), std::string::npos) << r.status.message();
  // Keys, but the wrong broker public key: the broker cannot read this client's hello.
  Client::Options wrong = fleet.client_options("alice");
  wrong.broker_key_file = (fleet.dir().path() / "worker.pub").string();
  wrong.timeout = milliseconds(10000);
  JobResult w = Client(wrong).run(kAdd);
  EXPECT_EQ(w.status.code(), StatusCode::kUnauthenticated) << w.status.to_string();
  EXPECT_NE(w.status.message().find("broker_key_file must be the broker's own public key"), std::string::npos)
      << w.status.message();
  EXPECT_LT(w.timings.total.count(), 5000000) << "said within a few reconnects, not at the timeout";
}

TEST(Auth, ARevokedKeysNextRequestIsRefusedWithinTheReloadInterval) {
  Fleet fleet(two_tenants());
  Client alice(fleet.client_options("alice"));
  ASSERT_TRUE(alice.run(kAdd).ok());
  // Alice's key removed from the file (the tenant stays): her open connection is refused too.
  fleet.write_tenants("tenants:\n  alice:\n    keys: []\n  bob: {}\n");
  EXPECT_TRUE(eventually([&] { return alice.run(kAdd).status.code() == StatusCode::kUnauthenticated; },
                         std::chrono::seconds(3)))
      << fleet.broker().log();
}

TEST(Identity, AKeyMayNotActForAnotherTenantNorSpendItsQuota) {
  Fleet fleet(two_tenants());
  Client alice(fleet.client_options("alice"));
  JobRequest as_bob = kAdd;
  as_bob.tenant = "bob";
  for (int i = 0; i < 3; ++i) {
    JobResult r = alice.run(as_bob);
    ASSERT_EQ(r.status.code(), StatusCode::kPermissionDenied) << r.status.to_string();
    EXPECT_NE(r.status.message().find("enrolled for tenant 'alice' and may not act for tenant 'bob'"),
              std::string::npos)
        << r.status.message();
  }
  // Bob's rate (2 per second, burst 2) was not touched: his own two jobs go through.
  Client bob(fleet.client_options("bob"));
  EXPECT_TRUE(bob.run(kAdd).ok());
  EXPECT_TRUE(bob.run(kAdd).ok());
}

TEST(Isolation, ATenantCannotReadOrCallAnotherTenantsActor) {
  Fleet fleet(two_tenants());
  Client alice(fleet.client_options("alice"));
  Client bob(fleet.client_options("bob"));
  Actor model(alice, "", "model-7");
  ASSERT_TRUE(model.put("w", Tensor::vector<float>({3, 4})).get().ok());
  ActorInfo info;
  EXPECT_EQ(bob.actor_info("alice", "model-7", info).code(), StatusCode::kPermissionDenied);
  Actor stolen(bob, "alice", "model-7");
  EXPECT_EQ(stolen.get("w").get().status.code(), StatusCode::kPermissionDenied);
  // Bob's own actor of the same name is another actor: alice's tensor is not there.
  Actor own(bob, "", "model-7");
  JobResult r = own.get("w").get();
  EXPECT_FALSE(r.ok());
  ASSERT_TRUE(model.info(info).is_ok());
  EXPECT_EQ(info.version, 1u) << "alice's actor is as she left it";
  // The operator sees it.
  EXPECT_TRUE(Client(fleet.client_options("operator")).actor_info("alice", "model-7", info).is_ok());
  EXPECT_TRUE(info.found);
}

TEST(Isolation, QuotaShowShowsATenantOnlyItsOwnAndTheOperatorEvery) {
  Fleet fleet(two_tenants());
  Client bob(fleet.client_options("bob"));
  QuotaReport report;
  EXPECT_EQ(bob.quotas("alice", report).code(), StatusCode::kPermissionDenied);
  ASSERT_TRUE(bob.quotas("", report).is_ok());
  ASSERT_EQ(report.tenants.size(), 1u);
  EXPECT_EQ(report.tenants[0].tenant, "bob");
  ASSERT_TRUE(Client(fleet.client_options("operator")).quotas("", report).is_ok());
  EXPECT_EQ(report.tenants.size(), 2u);
  JobResult r = Client(fleet.client_options("operator")).run(kAdd);
  EXPECT_EQ(r.status.code(), StatusCode::kPermissionDenied) << "operator keys run no jobs";
}

TEST(Auth, AWorkerWhoseKeyIsNotEnrolledNeverRegisters) {
  Fleet fleet(two_tenants());
  TempDir dir;
  const std::string rogue_key = (dir.path() / "rogue").string();
  core::write_key_files(rogue_key);
  Process rogue({BRIDGE_TEST_WORKER_BIN, "--broker", fleet.backend(), "--id", "rogue", "--device", "cpu", "--key-file",
                 rogue_key + ".key", "--broker-key-file", fleet.broker_public_key_file()},
                (dir.path() / "rogue.log").string());
  EXPECT_TRUE(eventually([&] { return fleet.broker().log().find("refused a worker connection") != std::string::npos; },
                         std::chrono::seconds(5)))
      << fleet.broker().log();
  FleetStatus status;
  ASSERT_TRUE(Client(fleet.client_options("operator")).status(status).is_ok());
  ASSERT_EQ(status.workers.size(), 1u);
  EXPECT_EQ(status.workers[0].id, "worker-0");
  Client alice(fleet.client_options("alice"));
  for (int i = 0; i < 10; ++i) EXPECT_EQ(alice.run(kAdd).worker_id, "worker-0");
  EXPECT_TRUE(
      eventually([&] { return rogue.log().find("cannot register: the broker refused this key") != std::string::npos; },
                 std::chrono::seconds(3)))
      << "the worker says why, not only that the broker is silent:\n"
      << rogue.log();
  // libzmq reports a refused handshake as a closed connection too: the worker leaves the retries to
  // libzmq rather than making a new connection (and a new handshake for the broker) each time.
  EXPECT_EQ(rogue.log().find("connecting again"), std::string::npos) << rogue.log();
}

// A worker whose key leaves workers_file while it is connected: its next message (a heartbeat)
// lets it go, and nothing more is sent to it.
TEST(Auth, AWorkerWhoseKeyIsRemovedFromTheWorkersFileIsLetGo) {
  Fleet fleet(two_tenants());
  TempDir dir;
  const std::string other_key = core::write_key_files((dir.path() / "other").string()).public_key;
  const std::string worker_key = core::read_key_file(fleet.key_file("worker"), true).public_key;
  fleet.dir().write("workers.yaml", "keys:\n  - \"" + other_key + "\"\n");
  EXPECT_TRUE(eventually(
      [&] {
        return fleet.broker().log().find("worker-0 lost (its key " + worker_key + " is no longer in") !=
               std::string::npos;
      },
      std::chrono::seconds(5)))
      << fleet.broker().log();
  EXPECT_TRUE(fleet.wait_for_workers(0)) << fleet.logs();
}

TEST(Identity, AnotherEnrolledKeyCannotRegisterUnderAWorkersId) {
  Fleet fleet(two_tenants());
  // A second enrolled key, as a compromised machine of the fleet would hold.
  TempDir dir;
  const std::string rogue_prefix = (dir.path() / "rogue").string();
  const std::string rogue_key = core::write_key_files(rogue_prefix).public_key;
  const std::string worker_key = core::read_key_file(fleet.key_file("worker"), true).public_key;
  fleet.dir().write("workers.yaml", "keys:\n  - \"" + worker_key + "\"\n  - \"" + rogue_key + "\"\n");
  ASSERT_TRUE(eventually([&] { return fleet.broker().log().find("2 enrolled worker keys") != std::string::npos; },
                         std::chrono::seconds(3)));
  zmq::context_t context;
  zmq::socket_t rogue(context, zmq::socket_type::dealer);
  rogue.set(zmq::sockopt::linger, 0);
  rogue.set(zmq::sockopt::routing_id, std::string("worker-0"));  // the real worker's id
  rogue.set(zmq::sockopt::rcvtimeo, 200);
  core::apply_curve_client(rogue, core::read_client_keys(rogue_prefix + ".key", fleet.broker_public_key_file(), false));
  rogue.connect(fleet.backend());
  flatbuffers::FlatBufferBuilder fbb;
  std::vector<flatbuffers::Offset<flatbuffers::String>> kernels{fbb.CreateString("vector_add")};
  auto hello = wire::CreateWorkerHello(fbb, fbb.CreateString("worker-0"), 99, core::add_device_info(fbb, {}),
                                       fbb.CreateVector(kernels), 8, 100);
  core::Frames frames;
  frames.push_back(core::finish_envelope(fbb, wire::Body::WorkerHello, hello.Union()));
  ASSERT_TRUE(zmq::send_multipart(rogue, frames));
  EXPECT_TRUE(
      eventually([&] { return fleet.broker().log().find("the id is bound to key " + worker_key) != std::string::npos; },
                 std::chrono::seconds(3)))
      << fleet.broker().log();
  // Jobs keep running on the real worker-0 (its own connection, which the rogue's hello does not
  // touch), and none reaches the rogue.
  Client alice(fleet.client_options("alice"));
  for (int i = 0; i < 10; ++i) {
    JobResult r = alice.run(kAdd);
    ASSERT_TRUE(r.ok()) << r.status.to_string() << fleet.logs();
    EXPECT_EQ(r.outputs.at(0).values<float>()[1], 22.0f);
  }
  for (int i = 0; i < 10; ++i) {
    std::vector<zmq::message_t> got;
    if (!zmq::recv_multipart(rogue, std::back_inserter(got))) break;
    const wire::Envelope* envelope = nullptr;
    if (!got.empty() && core::decode_envelope(got[0], core::Limits{}, envelope).is_ok()) {
      EXPECT_NE(envelope->body_type(), wire::Body::Dispatch) << "a job reached a process under another key's worker id";
    }
  }
}

// A raw client socket with a chosen routing id and key.
zmq::socket_t raw_client(zmq::context_t& context, const Fleet& fleet, const std::string& tenant,
                         const std::string& id) {
  zmq::socket_t s(context, zmq::socket_type::dealer);
  s.set(zmq::sockopt::linger, 0);
  s.set(zmq::sockopt::routing_id, id);
  fleet.secure_client_socket(s, tenant);
  s.connect(fleet.frontend());
  return s;
}

TEST(Identity, ANewSocketWithAnotherKeyOnALeftClientsRoutingIdGetsNoneOfItsResults) {
  Fleet fleet(two_tenants());
  zmq::context_t context;
  const std::string id = "client-alice-chosen-id";
  {
    zmq::socket_t alice = raw_client(context, fleet, "alice", id);
    for (std::uint64_t job = 1; job <= 4; ++job) {
      auto frames = core::encode_request({.kernel = "sleep", .params = {{"ms", 4000}}}, job, "", milliseconds(10000));
      ASSERT_TRUE(zmq::send_multipart(alice, frames));
    }
    ASSERT_TRUE(fleet.wait_for_inflight(2)) << fleet.logs();  // both slots of the one worker
  }  // alice's socket closes with her jobs running
  zmq::socket_t bob = raw_client(context, fleet, "bob", id);
  bob.set(zmq::sockopt::rcvtimeo, 1500);  // alice's jobs are still running meanwhile
  std::vector<zmq::message_t> got;
  EXPECT_FALSE(zmq::recv_multipart(bob, std::back_inserter(got))) << "bob received a message meant for alice";
  // Speaking on the id is refused while alice's jobs are in the broker. Sent again each second: if
  // bob's connection reached the broker before it had let alice's go (a loaded machine), the ROUTER
  // turned the duplicate id away and the message with it, and bob's socket connects again.
  bob.set(zmq::sockopt::rcvtimeo, 1000);
  got.clear();
  for (int attempt = 0; attempt < 20 && got.empty(); ++attempt) {
    auto frames = core::encode_request(kAdd, 99, "", milliseconds(5000));
    ASSERT_TRUE(zmq::send_multipart(bob, frames));
    if (!zmq::recv_multipart(bob, std::back_inserter(got))) got.clear();
  }
  ASSERT_FALSE(got.empty()) << "no answer to bob in 20 s";
  const wire::Envelope* envelope = nullptr;
  ASSERT_TRUE(core::decode_envelope(got[0], core::Limits{}, envelope).is_ok());
  const auto* result = envelope->body_as_JobResult();
  ASSERT_NE(result, nullptr);
  EXPECT_EQ(result->job_id(), 99u);
  EXPECT_EQ(core::from_wire(result->status()), StatusCode::kPermissionDenied);
  EXPECT_NE(core::view(result->message()).find("belongs to another key"), std::string::npos)
      << core::view(result->message());
}

// A TCP relay on 127.0.0.1 between one client and the broker that records every byte going either
// way: a capture of the stream as anyone on the network would see it, without root.
class RecordingRelay {
 public:
  explicit RecordingRelay(int broker_port) : port_(free_port()) {
    listener_ = ::socket(AF_INET, SOCK_STREAM, 0);
    const int one = 1;
    ::setsockopt(listener_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<std::uint16_t>(port_));
    if (::bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(listener_, 1) != 0)
      throw std::runtime_error("relay: cannot listen");
    thread_ = std::thread([this, broker_port] { run(broker_port); });
  }
  ~RecordingRelay() {
    stop_ = true;
    ::shutdown(listener_, SHUT_RDWR);
    thread_.join();
    ::close(listener_);
  }
  std::string endpoint() const { return tcp_endpoint(port_); }
  std::string recorded() {
    std::lock_guard lock(mutex_);
    return recorded_;
  }
  /// Closes the connection being relayed (both sides), as a network failure would; the next one
  /// the client makes is relayed again.
  void drop() { drop_ = true; }

 private:
  void run(int broker_port) {
    while (!stop_) {
      const int client = ::accept(listener_, nullptr, nullptr);
      if (client < 0) return;
      relay(client, broker_port);
    }
  }

  void relay(int client, int broker_port) {
    const int broker = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<std::uint16_t>(broker_port));
    if (::connect(broker, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
      char buffer[65536];
      bool open = true;
      while (open && !stop_ && !drop_) {
        pollfd fds[] = {{client, POLLIN, 0}, {broker, POLLIN, 0}};
        if (::poll(fds, 2, 50) <= 0) continue;
        for (int i = 0; i < 2 && open; ++i) {
          if (!(fds[i].revents & (POLLIN | POLLHUP))) continue;
          const ssize_t n = ::read(fds[i].fd, buffer, sizeof buffer);
          if (n <= 0) {
            open = false;
            break;
          }
          {
            std::lock_guard lock(mutex_);
            recorded_.append(buffer, static_cast<std::size_t>(n));
          }
          if (::write(i == 0 ? broker : client, buffer, static_cast<std::size_t>(n)) != n) open = false;
        }
      }
    }
    drop_ = false;
    ::close(broker);
    ::close(client);
  }

  int port_;
  int listener_ = -1;
  std::atomic<bool> stop_{false};
  std::atomic<bool> drop_{false};
  std::mutex mutex_;
  std::string recorded_;
  std::thread thread_;
};

// The bytes of the input tensor (and of its result: passthrough sends them back) as they would lie
// in the stream if nothing encrypted them.
bool stream_holds_the_tensor(const Fleet& fleet, bool secure) {
  const int broker_port = std::stoi(fleet.frontend().substr(fleet.frontend().rfind(':') + 1));
  RecordingRelay relay(broker_port);
  Client::Options o = fleet.client_options("alice");
  o.broker = relay.endpoint();
  if (!secure) {
    o.key_file.clear();
    o.broker_key_file.clear();
  }
  Tensor marker = Tensor::zeros(DType::kU8, {4096});
  auto bytes = marker.mutable_values<std::uint8_t>();
  for (std::size_t i = 0; i < bytes.size(); ++i)
    bytes[i] = static_cast<std::uint8_t>("GpuBridge-secret-tensor-"[i % 24]);
  {
    Client client(o);
    JobResult r = client.run({.kernel = "passthrough", .inputs = {marker}, .tenant = secure ? "" : "alice"});
    EXPECT_TRUE(r.ok()) << r.status.to_string();
  }
  const std::string stream = relay.recorded();
  EXPECT_GT(stream.size(), 8192u) << "the relay saw the job go through";
  return stream.find("GpuBridge-secret-tensor-GpuBridge-secret-tensor-") != std::string::npos;
}

TEST(Identity, AClientWhoseConnectionDropsGetsItsPendingResultsOnItsNewOne) {
  Fleet fleet(two_tenants());
  const int broker_port = std::stoi(fleet.frontend().substr(fleet.frontend().rfind(':') + 1));
  RecordingRelay relay(broker_port);
  Client::Options o = fleet.client_options("alice");
  o.broker = relay.endpoint();
  o.broker_check = std::chrono::seconds(10);  // only the reconnect itself may make it speak
  Client alice(o);
  ASSERT_TRUE(alice.run(kAdd).ok());
  auto slow = alice.submit({.kernel = "sleep", .params = {{"ms", 1500}}});
  ASSERT_TRUE(fleet.wait_for_inflight(1));
  relay.drop();  // the broker sees the connection close; libzmq reconnects the client
  JobResult r = slow.get();
  EXPECT_TRUE(r.ok()) << r.status.to_string() << "\n" << fleet.broker().log();
  EXPECT_LT(r.timings.total.count(), 5000000) << "answered when it finished, not at a timeout";
}

TEST(Auth, TheBytesOnTheWireAreNotPlaintext) {
  ::unsetenv("GPUBRIDGE_KEY_FILE");
  ::unsetenv("GPUBRIDGE_BROKER_KEY_FILE");
  {
    FleetOptions open = two_tenants();
    open.secure = false;
    Fleet fleet(open);
    EXPECT_TRUE(stream_holds_the_tensor(fleet, false)) << "the capture sees plaintext when nothing encrypts it";
  }
  Fleet fleet(two_tenants());
  EXPECT_FALSE(stream_holds_the_tensor(fleet, true)) << "a tensor's bytes crossed the network in the clear";
}

TEST(Auth, BrokersUseTheirRedisAclUserWhichCanTouchNothingElse) {
  FleetOptions o = two_tenants();
  o.redis_acl = true;
  Fleet fleet(o);
  Client alice(fleet.client_options("alice"));
  ASSERT_TRUE(alice.run(kAdd).ok()) << fleet.logs();  // admission scripts, leases
  Actor counter(alice, "", "counter");
  ASSERT_TRUE(counter.put("sum", Tensor::vector<float>({1, 2})).get().ok()) << fleet.logs();  // actor state, chunks
  JobResult call =
      counter.call({.kernel = "vector_add", .args = {Resident{"sum"}, Tensor::vector<float>({1, 1})}, .keep = {"sum"}})
          .get();
  ASSERT_TRUE(call.ok()) << call.status.to_string() << fleet.logs();
  ActorInfo reset;
  ASSERT_TRUE(counter.reset(reset).is_ok()) << fleet.logs();  // the reset script's commands
  EXPECT_EQ(reset.version, 3u);
  // Redis loses its data: the epoch script, and the marks the broker writes, run as its user too.
  ASSERT_TRUE(counter.put("sum", Tensor::vector<float>({1, 2})).get().ok()) << fleet.logs();
  fleet.redis().command({"FLUSHALL"});
  ASSERT_TRUE(eventually([&] { return fleet.broker().log().find("lost the fleet's data") != std::string::npos; },
                         std::chrono::seconds(5)))
      << fleet.logs();
  EXPECT_EQ(counter.get("sum").get().status.code(), StatusCode::kDataLoss);
  QuotaReport report;
  ASSERT_TRUE(alice.quotas("", report).is_ok());
  EXPECT_GE(report.tenants.at(0).inflight_jobs, 0) << "usage read from Redis";
  // What the user may not do, asked of Redis itself.
  EXPECT_NE(fleet.redis().command({"ACL", "DRYRUN", "gpubridge", "FLUSHALL"}).find("no permissions"),
            std::string::npos);
  EXPECT_NE(fleet.redis().command({"ACL", "DRYRUN", "gpubridge", "GET", "other:key"}).find("no permissions"),
            std::string::npos);
  EXPECT_NE(fleet.redis().command({"ACL", "DRYRUN", "gpubridge", "CONFIG", "GET", "*"}).find("no permissions"),
            std::string::npos);
  EXPECT_EQ(fleet.redis().command({"ACL", "DRYRUN", "gpubridge", "GET", "bridge:x"}), "OK");
  // Sentinel (ROLE) and redis_wait_replicas (WAIT), which this fleet does not use.
  EXPECT_EQ(fleet.redis().command({"ACL", "DRYRUN", "gpubridge", "ROLE"}), "OK");
  EXPECT_EQ(fleet.redis().command({"ACL", "DRYRUN", "gpubridge", "WAIT", "1", "50"}), "OK");
  EXPECT_EQ(fleet.broker().log().find("NOPERM"), std::string::npos) << "a command the ACL file forgot:\n"
                                                                    << fleet.broker().log();
}

TEST(Auth, AWrongRedisPasswordIsLoggedOnceAndTheBrokerIsNotReady) {
  const int http_port = free_port();
  FleetOptions o = two_tenants();
  o.redis_acl = true;
  o.redis_password = "not-the-password";
  o.broker_yaml_extra += "metrics_listen: 127.0.0.1:" + std::to_string(http_port) + "\n";
  Fleet fleet(o);
  // The ACL file holds "not-the-password" for gpubridge: change the file the broker reads instead.
  fleet.dir().write("redis-password", "wrong\n");
  fleet.restart_broker();
  ASSERT_TRUE(fleet.wait_for_workers(1)) << fleet.logs();
  Client alice(fleet.client_options("alice"));
  JobResult r = alice.run(kAdd);
  EXPECT_EQ(r.status.code(), StatusCode::kUnavailable) << r.status.to_string();
  std::this_thread::sleep_for(milliseconds(1500));
  httplib::Client http("127.0.0.1", http_port);
  auto ready = http.Get("/readyz");
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, 503);
  EXPECT_NE(ready->body.find("WRONGPASS"), std::string::npos) << ready->body;
  const std::string log = fleet.broker().log();
  std::size_t lines = 0;
  for (std::size_t at = log.find("refuses the broker's commands"); at != std::string::npos;
       at = log.find("refuses the broker's commands", at + 1))
    ++lines;
  EXPECT_NE(log.find("check the password of ACL user 'gpubridge'"), std::string::npos) << log;
  EXPECT_EQ(lines, 1u) << "one clear line, not one per retry:\n" << log;
}

TEST(Auth, TheMetricsEndpointsWantTheBearerTokenWhenOneIsSet) {
  const int http_port = free_port();
  TempDir secrets;
  const std::string token_file = secrets.write("metrics-token", "s3cret-token\n");
  FleetOptions o = two_tenants();
  o.broker_yaml_extra +=
      "metrics_listen: 127.0.0.1:" + std::to_string(http_port) + "\nmetrics_token_file: " + token_file + "\n";
  Fleet fleet(o);
  httplib::Client http("127.0.0.1", http_port);
  auto bare = http.Get("/metrics");
  ASSERT_TRUE(bare);
  EXPECT_EQ(bare->status, 401);
  EXPECT_EQ(bare->body.find("bridge_"), std::string::npos);
  EXPECT_EQ(http.Get("/readyz", {{"Authorization", "Bearer wrong"}})->status, 401);
  auto good = http.Get("/metrics", {{"Authorization", "Bearer s3cret-token"}});
  ASSERT_TRUE(good);
  EXPECT_EQ(good->status, 200);
  EXPECT_NE(good->body.find("bridge_workers"), std::string::npos);
  EXPECT_EQ(http.Get("/healthz")->status, 200) << "liveness probes need no token";
}

}  // namespace
}  // namespace bridge::testing
