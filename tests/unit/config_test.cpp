// Configuration: every error names the file, the line and the key; typos are refused.
#include <gtest/gtest.h>

#include "bridge/broker/broker_options.hpp"
#include "bridge/broker/redis_connection.hpp"
#include "bridge/broker/tenants.hpp"
#include "bridge/broker/worker_keys.hpp"
#include "bridge/core/config_map.hpp"
#include "bridge/worker/worker_options.hpp"

namespace bridge {
namespace {

std::string config_error(const std::function<void()>& f) {
  try {
    f();
  } catch (const core::ConfigError& e) {
    return e.what();
  }
  return "<no error>";
}

TEST(ConfigMap, ReadsTypedValuesAndLeavesAbsentOnesAlone) {
  auto map = core::ConfigMap::parse("a: 5\nb: hello\nc: true\nd: [x, y]\n", "test.yaml");
  std::uint32_t a = 0;
  std::string b;
  bool c = false;
  std::vector<std::string> d;
  int absent = 42;
  map.get("a", a);
  map.get("b", b);
  map.get("c", c);
  map.get("d", d);
  map.get("missing", absent);
  EXPECT_EQ(a, 5u);
  EXPECT_EQ(b, "hello");
  EXPECT_TRUE(c);
  EXPECT_EQ(d, (std::vector<std::string>{"x", "y"}));
  EXPECT_EQ(absent, 42);
  map.reject_unknown_keys();
}

TEST(ConfigMap, WrongTypeNamesFileLineAndKey) {
  auto map = core::ConfigMap::parse("first: 1\nslots: many\n", "worker.yaml");
  std::uint32_t slots = 0;
  EXPECT_EQ(config_error([&] { map.get("slots", slots); }),
            "worker.yaml:2: slots: expected a non-negative integer, got 'many'");
}

TEST(ConfigMap, UnknownKeyIsRefusedWithItsLine) {
  auto map = core::ConfigMap::parse("slots: 1\nhearbeat_ms: 5\n", "worker.yaml");
  std::uint32_t slots = 0;
  map.get("slots", slots);
  EXPECT_NE(config_error([&] { map.reject_unknown_keys(); }).find("worker.yaml:2: hearbeat_ms: unknown key"),
            std::string::npos);
}

TEST(ConfigMap, SyntaxErrorNamesTheLine) {
  EXPECT_NE(config_error([] { core::ConfigMap::parse("a: 1\nb: [unclosed\n", "x.yaml"); }).find("x.yaml:"),
            std::string::npos);
}

TEST(ConfigMap, NegativeForUnsignedIsRefused) {
  auto map = core::ConfigMap::parse("n: -3\n", "x.yaml");
  std::uint64_t n = 0;
  EXPECT_NE(config_error([&] { map.get("n", n); }).find("non-negative"), std::string::npos);
}

TEST(Tenants, InheritDefaultsAndOverrideThem) {
  auto table = broker::TenantTable::parse(
      "defaults:\n  max_inflight_jobs: 10\ntenants:\n  a: {}\n  b:\n    max_inflight_jobs: 3\n", "tenants.yaml");
  ASSERT_NE(table.find("a"), nullptr);
  EXPECT_EQ(table.find("a")->max_inflight_jobs, 10u);
  EXPECT_EQ(table.find("b")->max_inflight_jobs, 3u);
  EXPECT_EQ(table.find("c"), nullptr);
}

TEST(Tenants, RefuseZeroLimitAndUnknownKeysWithTheirLine) {
  EXPECT_EQ(config_error([] { broker::TenantTable::parse("tenants:\n  a:\n    max_inflight_jobs: 0\n", "t.yaml"); }),
            "t.yaml:3: tenants.a.max_inflight_jobs: must be at least 1");
  EXPECT_NE(config_error([] {
              broker::TenantTable::parse("tenants:\n  a:\n    max_inflight: 5\n", "t.yaml");
            }).find("t.yaml:3: tenants.a.max_inflight: unknown key"),
            std::string::npos);
}

TEST(Tenants, ReadEveryQuotaKey) {
  auto table = broker::TenantTable::parse(
      "defaults:\n  weight: 2\n  rate: 10\ntenants:\n  a:\n    max_inflight_bytes: 1000\n    burst: 5\n"
      "    min_priority: -5\n    max_priority: 5\n    kernels: [vector_add, matmul]\n  b: {}\n",
      "tenants.yaml");
  const auto* a = table.find("a");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->max_inflight_bytes, 1000u);
  EXPECT_EQ(a->rate, 10);  // from defaults
  EXPECT_EQ(a->effective_burst(), 5);
  EXPECT_EQ(a->weight, 2);
  EXPECT_EQ(a->min_priority, -5);
  EXPECT_TRUE(a->allows_kernel("matmul"));
  EXPECT_FALSE(a->allows_kernel("softmax"));
  const auto* b = table.find("b");
  EXPECT_EQ(b->effective_burst(), 10);  // burst 0 = rate
  EXPECT_TRUE(b->allows_kernel("softmax"));
}

TEST(Tenants, RefuseImpossibleQuotasNamingTheKey) {
  EXPECT_NE(config_error([] {
              broker::TenantTable::parse("tenants:\n  a:\n    weight: 0\n", "t.yaml");
            }).find("t.yaml:3: tenants.a.weight: must be a positive number"),
            std::string::npos);
  EXPECT_NE(config_error([] {
              broker::TenantTable::parse("tenants:\n  a:\n    min_priority: 3\n    max_priority: 1\n", "t.yaml");
            }).find("min_priority: must not exceed max_priority"),
            std::string::npos);
  EXPECT_NE(config_error([] { broker::TenantTable::parse("defaults:\n  rate: -1\n", "t.yaml"); }).find("defaults.rate"),
            std::string::npos);
  EXPECT_NE(config_error([] {
              broker::TenantTable::parse("tenants:\n  a:\n    kernels: matmul\n", "t.yaml");
            }).find("list of strings"),
            std::string::npos);
}

// Tenant names go into Redis keys ("<tenant>/<actor>") and metric labels: "team" with actor "a/m"
// and "team/a" with actor "m" would share a key, so a name with a separator is refused at load.
TEST(Tenants, NamesAreLettersDigitsDotsDashesAndUnderscoresOnly) {
  for (const std::string bad : {"team/a", "a b", "x:y", "", "na\u00efve"}) {
    const std::string yaml = "tenants:\n  \"" + bad + "\": {}\n";
    EXPECT_NE(config_error([&] { broker::TenantTable::parse(yaml, "t.yaml"); }).find("t.yaml:2:"), std::string::npos)
        << "'" << bad << "' was accepted";
  }
  EXPECT_NE(config_error([] {
              broker::TenantTable::parse("tenants:\n  team/a: {}\n", "t.yaml");
            }).find("tenant names must be 1 to 64 characters of A-Z a-z 0-9 . _ -"),
            std::string::npos);
  EXPECT_NE(
      config_error([] { broker::TenantTable::parse("tenants:\n  " + std::string(65, 'a') + ": {}\n", "t.yaml"); }),
      "<no error>");
  auto ok = broker::TenantTable::parse("tenants:\n  Team-1.prod_x: {}\n  " + std::string(64, 'b') + ": {}\n", "t.yaml");
  EXPECT_NE(ok.find("Team-1.prod_x"), nullptr);
}

TEST(Tenants, MaxJobMsHasADefaultAndRefusesZero) {
  auto table = broker::TenantTable::parse("tenants:\n  a: {}\n  b:\n    max_job_ms: 250\n", "t.yaml");
  EXPECT_EQ(table.find("a")->max_job_ms, broker::TenantQuota::kDefaultMaxJobMs);
  EXPECT_EQ(table.find("b")->max_job_ms, 250u);
  EXPECT_EQ(config_error([] { broker::TenantTable::parse("tenants:\n  a:\n    max_job_ms: 0\n", "t.yaml"); }),
            "t.yaml:3: tenants.a.max_job_ms: must be at least 1 (milliseconds)");
}

TEST(Tenants, TheShippedFileLoads) {
  auto table = broker::TenantTable::load_file(BRIDGE_SOURCE_DIR "/config/tenants.yaml");
  EXPECT_NE(table.find("default"), nullptr);
}

TEST(Options, TheShippedBrokerAndWorkerFilesLoadWithTheirDefaults) {
  auto b = broker::load_broker_options(BRIDGE_SOURCE_DIR "/config/broker.yaml");
  EXPECT_EQ(b.heartbeat_ms, broker::BrokerOptions::kDefaultHeartbeatMs);
  EXPECT_EQ(b.tenants_file, BRIDGE_SOURCE_DIR "/config/tenants.yaml");
  EXPECT_TRUE(b.secure);
  EXPECT_EQ(b.workers_file, BRIDGE_SOURCE_DIR "/config/workers.yaml");
  // Secure by default: it will not start without its key pair, and says how to make one.
  EXPECT_NE(config_error([&] { b.validate(); }).find("bridgectl keygen"), std::string::npos);
  b.secret_key_file = "broker.key";
  b.validate();
  EXPECT_EQ(broker::WorkerKeys::load_file(b.workers_file).size(), 0u);
  auto w = worker::load_worker_options(BRIDGE_SOURCE_DIR "/config/worker.yaml");
  EXPECT_EQ(w.slots, worker::WorkerOptions::kDefaultSlots);
  w.validate();
}

TEST(Options, ValidateRefusesImpossibleValues) {
  worker::WorkerOptions w;
  w.slots = 0;
  EXPECT_NE(config_error([&] { w.validate(); }).find("slots"), std::string::npos);
  // Each connection's routing id is the id and 17 more bytes; ZeroMQ takes 255 at most.
  w.slots = 1;
  w.id.assign(worker::WorkerOptions::kMaxIdBytes + 1, 'w');
  EXPECT_NE(config_error([&] { w.validate(); }).find("id: at most 200 bytes"), std::string::npos);
  broker::BrokerOptions b;
  b.backend = b.frontend;
  EXPECT_NE(config_error([&] { b.validate(); }).find("different"), std::string::npos);
}

TEST(RedisAddress, ParsesEveryPart) {
  auto a = broker::RedisAddress::parse("redis://:secret@10.0.0.5:7000/3");
  EXPECT_EQ(a.host, "10.0.0.5");
  EXPECT_EQ(a.port, 7000);
  EXPECT_EQ(a.password, "secret");
  EXPECT_EQ(a.db, 3);
  EXPECT_EQ(a.to_string(), "redis://10.0.0.5:7000/3");  // never prints the password
  auto b = broker::RedisAddress::parse("redis://localhost");
  EXPECT_EQ(b.port, 6379);
  EXPECT_EQ(b.db, 0);
}

TEST(RedisAddress, TakesAnAclUserBesideThePassword) {
  auto a = broker::RedisAddress::parse("redis://fleet:s3cret@127.0.0.1:6380/2");
  EXPECT_EQ(a.user, "fleet");
  EXPECT_EQ(a.password, "s3cret");
  EXPECT_EQ(a.port, 6380);
  EXPECT_EQ(a.to_string().find("s3cret"), std::string::npos) << "the password is never printed";
  auto b = broker::RedisAddress::parse("redis://onlypassword@127.0.0.1");
  EXPECT_EQ(b.user, "");
  EXPECT_EQ(b.password, "onlypassword");
}

TEST(RedisAddress, RefusesMalformedUrls) {
  for (const char* bad :
       {"http://x", "redis://", "redis://h:99999", "redis://h:port", "redis://h/db", "sentinel://h:26379",
        "sentinel://h:26379/", "sentinel://h,,g/m", "sentinel://h:0/m", "sentinel://h/m/db"})
    EXPECT_NE(config_error([&] { broker::RedisAddress::parse(bad); }), "<no error>") << bad;
}

TEST(RedisAddress, ASentinelUrlListsTheSentinelsAndNamesTheMaster) {
  auto a = broker::RedisAddress::parse("sentinel://fleet:s3cret@10.0.0.1:26380,10.0.0.2,sentinel-3:5000/mymaster/2");
  ASSERT_TRUE(a.sentinel());
  ASSERT_EQ(a.sentinels.size(), 3u);
  EXPECT_EQ(a.sentinels[0].host, "10.0.0.1");
  EXPECT_EQ(a.sentinels[0].port, 26380);
  EXPECT_EQ(a.sentinels[1].port, 26379) << "Sentinel's default port";
  EXPECT_EQ(a.sentinels[2].host, "sentinel-3");
  EXPECT_EQ(a.master_name, "mymaster");
  EXPECT_EQ(a.db, 2);
  EXPECT_EQ(a.user, "fleet") << "the credentials are the master's";
  EXPECT_EQ(a.password, "s3cret");
  EXPECT_EQ(a.to_string(), "sentinel://10.0.0.1:26380,10.0.0.2:26379,sentinel-3:5000/mymaster/2");
  EXPECT_FALSE(broker::RedisAddress::parse("redis://h").sentinel());
}

}  // namespace
}  // namespace bridge
