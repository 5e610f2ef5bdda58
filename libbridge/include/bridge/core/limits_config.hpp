#pragma once
/// @file Reading the `limits:` section that broker.yaml and worker.yaml share.

#include "bridge/core/config_map.hpp"
#include "bridge/core/wire.hpp"

namespace bridge::core {

/// Reads every key of `limits:` into `limits` (absent keys keep their values); throws ConfigError.
void read_limits(const ConfigMap& section, Limits& limits);

}  // namespace bridge::core
