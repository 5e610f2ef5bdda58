#pragma once
/// @file Process-wide logging set-up (spdlog) shared by the broker, the worker and bridgectl.

#include <string>

namespace bridge::core {

/// Sets the default logger (to stderr): `name` prefixes every line; `level` is
/// trace|debug|info|warn|error|off; `format` is text (one readable line per event) or json (one JSON
/// object per line: time, process, pid, level, msg, for log shippers). Throws ConfigError on a bad
/// level or format.
void init_logging(const std::string& name, const std::string& level, const std::string& format = "text");

/// `s` escaped for the inside of a JSON string (quotes, backslashes, control characters; bytes that
/// are not UTF-8 become U+FFFD).
std::string json_escape(std::string_view s);

}  // namespace bridge::core
