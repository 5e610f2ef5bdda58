#include "bridge/core/curve.hpp"

#include <stdlib.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "bridge/broker/tenants.hpp"
#include "bridge/core/config_map.hpp"

namespace bridge::core {
namespace {

// A directory of its own, removed after the test.
struct KeyDir {
  KeyDir() {
    char name[] = "/tmp/gpubridge-keys-XXXXXX";
    dir = ::mkdtemp(name);
  }
  ~KeyDir() { std::filesystem::remove_all(dir); }
  std::filesystem::path path() const { return dir; }
  std::filesystem::path dir;
};

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

TEST(CurveKeys, KeygenWritesAPairThatReadsBackWithTheSecretPrivate) {
  KeyDir dir;
  const std::string prefix = (dir.path() / "alice").string();
  const CurveKeys made = write_key_files(prefix);
  struct stat st {};
  ASSERT_EQ(::stat((prefix + ".key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  const CurveKeys secret = read_key_file(prefix + ".key", true);
  EXPECT_EQ(secret.public_key, made.public_key);
  EXPECT_EQ(secret.secret_key, made.secret_key);
  const CurveKeys pub = read_key_file(prefix + ".pub", false);
  EXPECT_EQ(pub.public_key, made.public_key);
  EXPECT_TRUE(pub.secret_key.empty());
  EXPECT_NE(error_of([&] { write_key_files(prefix); }).find("never overwrites"), std::string::npos);
}

TEST(CurveKeys, ASecretOthersCanReadOrAPublicFileInItsPlaceIsRefused) {
  KeyDir dir;
  const std::string prefix = (dir.path() / "k").string();
  write_key_files(prefix);
  EXPECT_NE(error_of([&] { read_key_file(prefix + ".pub", true); }).find("holds no secret-key"), std::string::npos);
  ::chmod((prefix + ".key").c_str(), 0644);
  EXPECT_NE(error_of([&] { read_key_file(prefix + ".key", true); }).find("chmod 600"), std::string::npos);
  EXPECT_NE(error_of([&] { read_client_keys(prefix + ".key", "", false); }).find("only one is set"), std::string::npos);
  EXPECT_FALSE(read_client_keys("", "", false).enabled());
}

TEST(CurveKeys, TenantsListKeysOnceEachAndOnlyValidOnes) {
  KeyDir dir;
  const std::string a = write_key_files((dir.path() / "a").string()).public_key;
  const std::string op = write_key_files((dir.path() / "op").string()).public_key;
  auto table = broker::TenantTable::parse(
      "operator_keys: [\"" + op + "\"]\ntenants:\n  alice:\n    keys: [\"" + a + "\"]\n  bob: {}\n", "t.yaml");
  ASSERT_NE(table.tenant_of_key(a), nullptr);
  EXPECT_EQ(*table.tenant_of_key(a), "alice");
  EXPECT_EQ(table.tenant_of_key(op), nullptr);
  EXPECT_TRUE(table.is_operator_key(op));
  EXPECT_NE(error_of([&] {
              broker::TenantTable::parse("tenants:\n  a:\n    keys: [\"" + a + "\"]\n  b:\n    keys: [\"" + a + "\"]\n",
                                         "t.yaml");
            }).find("listed twice"),
            std::string::npos);
  EXPECT_NE(error_of([&] { broker::TenantTable::parse("tenants:\n  a:\n    keys: [\"not-a-key\"]\n", "t.yaml"); })
                .find("is not a CURVE public key"),
            std::string::npos);
}

TEST(CurveKeys, AKeysDirectoryEnrollsEachPublicFileForItsTenantOrAsAnOperator) {
  KeyDir dir;
  std::filesystem::create_directories(dir.path() / "tenants" / "alice");
  std::filesystem::create_directories(dir.path() / "operators");
  const std::string laptop = write_key_files((dir.path() / "tenants" / "alice" / "laptop").string()).public_key;
  const std::string ops = write_key_files((dir.path() / "operators" / "ops").string()).public_key;
  auto table = broker::TenantTable::parse("tenants:\n  alice: {}\n", "t.yaml");
  table.add_keys_from_dir(dir.path().string());
  ASSERT_NE(table.tenant_of_key(laptop), nullptr);
  EXPECT_EQ(*table.tenant_of_key(laptop), "alice");
  EXPECT_TRUE(table.is_operator_key(ops));
  std::filesystem::create_directories(dir.path() / "tenants" / "mallory");
  write_key_files((dir.path() / "tenants" / "mallory" / "m").string());
  auto again = broker::TenantTable::parse("tenants:\n  alice: {}\n", "t.yaml");
  EXPECT_NE(
      error_of([&] { again.add_keys_from_dir(dir.path().string()); }).find("'mallory' is not in the tenants file"),
      std::string::npos);
}

}  // namespace
}  // namespace bridge::core
