#pragma once
/// @file What bridgectl prints: each answer as a table for people, or as one JSON object (--json).

#include <cstdint>
#include <string>

#include "bridge/fleet.hpp"
#include "bridge/job.hpp"

namespace bridgectl {

void print_result(const bridge::JobResult& result, bool json);
void print_status(const bridge::FleetStatus& fleet, bool json);
void print_quotas(const bridge::QuotaReport& report, bool json);
void print_actor(const bridge::ActorInfo& actor, bool json);

/// "USED/LIMIT" for a tenant's usage against its limit; "?" for usage Redis could not tell (-1).
std::string usage_of(std::int64_t used, std::uint64_t limit);

}  // namespace bridgectl
