#pragma once
// What a load test sends: streams of jobs, from --stream flags or a scenario file (YAML,
// loadtest/scenarios/*.yaml, documented in loadtest/scenarios/README.md).

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "bridge/job.hpp"

namespace bridge::loadtest {

struct StreamSpec {
  std::string name;                     ///< for reports; defaults to tenant/kernel
  std::string tenant = "default";
  std::string kernel = "passthrough";
  std::size_t bytes = 16;               ///< size of each input tensor (matmul: an n x n matrix of about this)
  std::map<std::string, double> params;
  bool open = false;                    ///< open loop (rate) or closed loop (concurrency)
  std::uint32_t concurrency = 16;
  double rate = 100;
  int priority = 0;
  Placement placement = Placement::kAny;
  std::uint32_t timeout_ms = 30000;
  std::uint32_t actors = 0;             ///< > 0: calls on this many actors, input 0 resident in each
};

struct Scenario {
  double duration_s = 10;
  double warmup_s = 2;
  std::vector<StreamSpec> streams;
};

/// One --stream flag: comma-separated key=value (see bridge-loadtest --help). Throws core::ConfigError.
StreamSpec parse_stream(const std::string& text);
/// A scenario file. Throws core::ConfigError naming the file, line and key.
Scenario load_scenario(const std::string& path);

}  // namespace bridge::loadtest
