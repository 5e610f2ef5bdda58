#pragma once
/// @file Process-wide logging set-up (spdlog) shared by the broker, the worker and bridgectl.

#include <string>

namespace bridge::core {

/// Sets the default logger (to stderr): `name` prefixes every line; `level` is
/// trace|debug|info|warn|error|off. Throws ConfigError on a bad level.
void init_logging(const std::string& name, const std::string& level);

}  // namespace bridge::core
