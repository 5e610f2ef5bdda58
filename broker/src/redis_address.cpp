// RedisAddress: what the broker's `redis` URL says (redis:// or sentinel://), parsed once at start.
#include <string>
#include <string_view>

#include "bridge/broker/redis_connection.hpp"
#include "bridge/core/config_map.hpp"

namespace bridge::broker {

namespace {

// "HOST[:PORT]" of `url`, the port `default_port` when not given.
RedisAddress::Node parse_node(std::string text, int default_port, const std::string& url, std::string_view form) {
  RedisAddress::Node node{.host = {}, .port = default_port};
  if (const auto colon = text.rfind(':'); colon != std::string::npos) {
    const std::string port = text.substr(colon + 1);
    text = text.substr(0, colon);
    if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos ||
        std::stoi(port) < 1 || std::stoi(port) > 65535)
      throw core::ConfigError("redis URL '" + url + "': port '" + port + "' is not a number from 1 to 65535");
    node.port = std::stoi(port);
  }
  if (text.empty()) throw core::ConfigError("redis URL '" + url + "' has no host (" + std::string(form) + ")");
  node.host = std::move(text);
  return node;
}

int parse_db(const std::string& db, const std::string& url) {
  if (db.empty()) return 0;
  if (db.size() > 5 || db.find_first_not_of("0123456789") != std::string::npos || std::stoi(db) > 65535)
    throw core::ConfigError("redis URL '" + url + "': database '" + db + "' is not a number from 0 to 65535");
  return std::stoi(db);
}

}  // namespace

RedisAddress RedisAddress::parse(const std::string& url) {
  constexpr std::string_view kScheme = "redis://", kSentinelScheme = "sentinel://";
  constexpr std::string_view kForm = "redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]";
  constexpr std::string_view kSentinelForm = "sentinel://[[USER]:PASSWORD@]HOST[:PORT][,HOST[:PORT]...]/MASTER[/DB]";
  const bool sentinel = url.rfind(kSentinelScheme, 0) == 0;
  if (!sentinel && url.rfind(kScheme, 0) != 0)
    throw core::ConfigError("redis URL '" + url + "' must start with redis:// (" + std::string(kForm) +
                            ") or sentinel:// (" + std::string(kSentinelForm) + ")");
  RedisAddress a;
  std::string rest = url.substr(sentinel ? kSentinelScheme.size() : kScheme.size());
  if (const auto at = rest.rfind('@'); at != std::string::npos) {
    std::string credentials = rest.substr(0, at);
    rest = rest.substr(at + 1);
    const auto colon = credentials.find(':');
    if (colon == std::string::npos) {
      a.password = credentials;  // redis://PASSWORD@HOST, as redis-cli -u takes it
    } else {
      a.user = credentials.substr(0, colon);
      a.password = credentials.substr(colon + 1);
    }
  }
  std::string path;
  if (const auto slash = rest.find('/'); slash != std::string::npos) {
    path = rest.substr(slash + 1);
    rest = rest.substr(0, slash);
  }
  if (!sentinel) {
    a.db = parse_db(path, url);
    const Node node = parse_node(rest, 6379, url, kForm);
    a.host = node.host;
    a.port = node.port;
    return a;
  }
  // sentinel://: the hosts are sentinels, the path is MASTER[/DB].
  const auto slash = path.find('/');
  a.master_name = path.substr(0, slash);
  if (a.master_name.empty())
    throw core::ConfigError("redis URL '" + url + "' names no master (" + std::string(kSentinelForm) + ")");
  if (slash != std::string::npos) a.db = parse_db(path.substr(slash + 1), url);
  for (std::size_t start = 0; start <= rest.size();) {
    const auto comma = std::min(rest.find(',', start), rest.size());
    a.sentinels.push_back(parse_node(rest.substr(start, comma - start), 26379, url, kSentinelForm));
    start = comma + 1;
  }
  a.host.clear();
  a.port = 0;
  return a;
}

std::string RedisAddress::to_string() const {
  if (!sentinel()) return "redis://" + host + ":" + std::to_string(port) + "/" + std::to_string(db);
  std::string out = "sentinel://";
  for (std::size_t i = 0; i < sentinels.size(); ++i)
    out += (i ? "," : "") + sentinels[i].host + ":" + std::to_string(sentinels[i].port);
  return out + "/" + master_name + "/" + std::to_string(db);
}

}  // namespace bridge::broker
