#include "scenario.hpp"

#include <sstream>

#include "bridge/core/config_map.hpp"

namespace bridge::loadtest {
namespace {

void check(const StreamSpec& s, const std::string& where) {
  if (s.concurrency == 0 || s.rate <= 0) throw core::ConfigError(where + ": concurrency and rate must be positive");
  if (s.bytes == 0) throw core::ConfigError(where + ": bytes must be positive");
}

std::string default_name(const StreamSpec& s) { return s.tenant + "/" + s.kernel; }

}  // namespace

StreamSpec parse_stream(const std::string& text) {
  StreamSpec s;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');) {
    const auto eq = item.find('=');
    if (eq == std::string::npos) throw core::ConfigError("--stream " + text + ": '" + item + "' is not key=value");
    const std::string key = item.substr(0, eq), value = item.substr(eq + 1);
    try {
      if (key == "name") s.name = value;
      else if (key == "tenant") s.tenant = value;
      else if (key == "kernel") s.kernel = value;
      else if (key == "bytes") s.bytes = std::stoull(value);
      else if (key.rfind("param.", 0) == 0) s.params[key.substr(6)] = std::stod(value);
      else if (key == "mode" && (value == "open" || value == "closed")) s.open = value == "open";
      else if (key == "concurrency") s.concurrency = static_cast<std::uint32_t>(std::stoul(value));
      else if (key == "rate") s.rate = std::stod(value);
      else if (key == "priority") s.priority = std::stoi(value);
      else if (key == "timeout_ms") s.timeout_ms = static_cast<std::uint32_t>(std::stoul(value));
      else if (key == "actors") s.actors = static_cast<std::uint32_t>(std::stoul(value));
      else if (key == "placement" && parse_placement(value, s.placement)) {
      } else throw core::ConfigError("--stream " + text + ": unknown key or value '" + item + "'");
    } catch (const std::invalid_argument&) {
      throw core::ConfigError("--stream " + text + ": '" + value + "' is not a number");
    } catch (const std::out_of_range&) {
      throw core::ConfigError("--stream " + text + ": '" + value + "' is out of range");
    }
  }
  check(s, "--stream " + text);
  if (s.name.empty()) s.name = default_name(s);
  return s;
}

Scenario load_scenario(const std::string& path) {
  Scenario scenario;
  const auto file = core::ConfigMap::load_file(path);
  file.get("duration_s", scenario.duration_s);
  file.get("warmup_s", scenario.warmup_s);
  const auto streams = file.child("streams");
  for (const auto& name : streams.keys()) {
    const auto map = streams.child(name);
    StreamSpec s;
    s.name = name;
    map.get("tenant", s.tenant);
    map.get("kernel", s.kernel);
    std::uint64_t bytes = s.bytes;
    map.get("bytes", bytes);
    s.bytes = static_cast<std::size_t>(bytes);
    const auto params = map.child("params");
    for (const auto& param : params.keys()) {
      double value = 0;
      params.get(param, value);
      s.params[param] = value;
    }
    params.reject_unknown_keys();
    std::string mode = "closed";
    map.get("mode", mode);
    if (mode != "open" && mode != "closed") map.fail("mode", "expected open or closed, got '" + mode + "'");
    s.open = mode == "open";
    map.get("concurrency", s.concurrency);
    map.get("rate", s.rate);
    map.get("priority", s.priority);
    map.get("timeout_ms", s.timeout_ms);
    map.get("actors", s.actors);
    std::string placement = "any";
    map.get("placement", placement);
    if (!parse_placement(placement, s.placement))
      map.fail("placement", "expected any, prefer-gpu, require-gpu or cpu-only");
    map.reject_unknown_keys();
    check(s, path + ": streams." + name);
    scenario.streams.push_back(std::move(s));
  }
  streams.reject_unknown_keys();
  file.reject_unknown_keys();
  if (scenario.streams.empty()) throw core::ConfigError(path + ": streams: define at least one stream");
  if (scenario.duration_s <= 0 || scenario.warmup_s < 0)
    throw core::ConfigError(path + ": duration_s must be positive and warmup_s not negative");
  return scenario;
}

}  // namespace bridge::loadtest
