#include "bridge/core/limits_config.hpp"

namespace bridge::core {

void read_limits(const ConfigMap& section, Limits& limits) {
  section.get("max_header_bytes", limits.max_header_bytes);
  section.get("max_tensors", limits.max_tensors);
  section.get("max_rank", limits.max_rank);
  section.get("max_tensor_bytes", limits.max_tensor_bytes);
  section.get("max_job_bytes", limits.max_job_bytes);
  section.get("max_params", limits.max_params);
  section.get("max_stages", limits.max_stages);
  section.get("max_name_bytes", limits.max_name_bytes);
  if (limits.max_header_bytes < 256) section.fail("max_header_bytes", "must be at least 256");
  if (limits.max_tensor_bytes > limits.max_job_bytes)
    section.fail("max_tensor_bytes", "must not exceed max_job_bytes");
  if (limits.max_name_bytes == 0) section.fail("max_name_bytes", "must be at least 1");
  section.reject_unknown_keys();
}

}  // namespace bridge::core
