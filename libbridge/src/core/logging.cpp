#include "bridge/core/logging.hpp"

#include <cstdio>

#include <nlohmann/json.hpp>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "bridge/core/config_map.hpp"

namespace bridge::core {
namespace {

// %j: the message, escaped for a JSON string, so that a message with quotes stays one valid object.
class JsonMessage final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&, spdlog::memory_buf_t& dest) override {
    const std::string escaped = json_escape(std::string_view(msg.payload.data(), msg.payload.size()));
    dest.append(escaped.data(), escaped.data() + escaped.size());
  }
  std::unique_ptr<custom_flag_formatter> clone() const override { return std::make_unique<JsonMessage>(); }
};

// %V: the message with control characters (newlines among them) written as \xNN, so that a name a
// peer chose (a routing id, a tenant, a kernel) cannot end a line and forge the next one.
class TextMessage final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&, spdlog::memory_buf_t& dest) override {
    for (char c : std::string_view(msg.payload.data(), msg.payload.size())) {
      const auto byte = static_cast<unsigned char>(c);
      if (byte >= 0x20 && byte != 0x7f) {
        dest.push_back(c);
        continue;
      }
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", static_cast<unsigned>(byte));
      dest.append(buf, buf + 4);
    }
  }
  std::unique_ptr<custom_flag_formatter> clone() const override { return std::make_unique<TextMessage>(); }
};

}  // namespace

std::string json_escape(std::string_view s) {
  // nlohmann-json writes the string as JSON, bytes that are not UTF-8 replaced, so that a name a
  // peer chose cannot make a log line invalid JSON. Its quotes are dropped: the pattern has them.
  const std::string quoted =
      nlohmann::json(std::string(s)).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return quoted.substr(1, quoted.size() - 2);
}

void init_logging(const std::string& name, const std::string& level, const std::string& format) {
  const auto parsed = spdlog::level::from_str(level);
  if (parsed == spdlog::level::off && level != "off")
    throw ConfigError("log_level '" + level + "' is not one of trace, debug, info, warn, error, off");
  if (format != "text" && format != "json") throw ConfigError("log_format '" + format + "' is not text or json");
  auto logger = spdlog::stderr_color_mt(name);
  if (format == "json") {
    auto formatter = std::make_unique<spdlog::pattern_formatter>();
    formatter->add_flag<JsonMessage>('j').set_pattern(
        R"({"time":"%Y-%m-%dT%H:%M:%S.%e%z","process":"%n","pid":%P,"level":"%l","msg":"%j"})");
    logger->set_formatter(std::move(formatter));
  } else {
    auto formatter = std::make_unique<spdlog::pattern_formatter>();
    formatter->add_flag<TextMessage>('V').set_pattern("%Y-%m-%d %H:%M:%S.%e %n[%P] %^%l%$ %V");
    logger->set_formatter(std::move(formatter));
  }
  logger->set_level(parsed);
  logger->flush_on(spdlog::level::warn);
  spdlog::set_default_logger(logger);
}

}  // namespace bridge::core
