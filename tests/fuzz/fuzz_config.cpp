// Fuzz target: text the broker parses: tenants.yaml (edited by operators while the fleet runs, with
// its client keys), workers.yaml, CURVE keys, the
// actor tensor descriptions it reads back from Redis, Redis URLs, dtype and placement names. Any
// error must be a core::ConfigError or a false return; anything else (a crash, another exception)
// is a bug.
#include <cstddef>
#include <cstdint>
#include <string>

#include "bridge/broker/actor_store.hpp"
#include "bridge/broker/redis_connection.hpp"
#include "bridge/broker/tenants.hpp"
#include "bridge/broker/worker_keys.hpp"
#include "bridge/core/config_map.hpp"
#include "bridge/core/curve.hpp"
#include "bridge/job.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace bridge;
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    broker::TenantTable table = broker::TenantTable::parse(text, "fuzz.yaml");
    for (const auto& [name, quota] : table.tenants()) (void)quota.effective_burst();
  } catch (const core::ConfigError&) {
  }
  try {
    (void)broker::RedisAddress::parse(text);
  } catch (const core::ConfigError&) {
  }
  try {  // workers_file, edited like tenants.yaml
    (void)broker::WorkerKeys::parse(text, "fuzz-workers.yaml");
  } catch (const core::ConfigError&) {
  }
  (void)core::valid_curve_key(text);
  DType dtype{};
  Shape shape;
  if (broker::decode_tensor_meta(text, dtype, shape)) {
    // What the broker does next with a description it accepted.
    try {
      (void)element_count(shape);
    } catch (const std::invalid_argument&) {
    }
  }
  (void)parse_dtype(text, dtype);
  Placement placement{};
  (void)parse_placement(text, placement);
  return 0;
}
