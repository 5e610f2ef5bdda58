#include "bridge/broker/worker_keys.hpp"

#include <vector>

#include "bridge/core/config_map.hpp"
#include "bridge/core/curve.hpp"

namespace bridge::broker {
namespace {

void read_keys(const core::ConfigMap& config, std::set<std::string>& into) {
  std::vector<std::string> listed;
  config.get("keys", listed);
  for (const auto& key : listed) {
    if (!core::valid_curve_key(key))
      config.fail("keys",
                  "'" + key + "' is not a CURVE public key (40 characters of Z85, from bridgectl keygen's .pub file)");
    if (!into.insert(key).second) config.fail("keys", "key " + key + " is listed twice");
  }
  config.reject_unknown_keys();
}

}  // namespace

WorkerKeys WorkerKeys::load_file(const std::string& path) {
  WorkerKeys keys;
  read_keys(core::ConfigMap::load_file(path), keys.keys_);
  return keys;
}

WorkerKeys WorkerKeys::parse(const std::string& text, const std::string& origin) {
  WorkerKeys keys;
  read_keys(core::ConfigMap::parse(text, origin), keys.keys_);
  return keys;
}

}  // namespace bridge::broker
