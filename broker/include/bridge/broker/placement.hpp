#pragma once
/// @file How the broker ranks the workers that could take a job.

#include "bridge/broker/worker_registry.hpp"

namespace bridge::broker {

/// The seed's device score, each term normalised to [0, 1]:
///   0.4 × free device memory / total
/// + 0.3 × (1 − jobs in flight / slots)            (the seed's queue depth, as our credits)
/// + 0.2 × (1 − temperature / 90 °C), floored at 0
/// + 0.1 × min(compute capability major / 10, 1)  (the seed's `major × 0.1` grows without bound)
/// A reading the worker reports as unknown (−1) counts as 0.5, the middle of its range, so a worker
/// that cannot read, say, its temperature is neither preferred nor avoided for it.
double device_score(const WorkerRecord& worker);

/// Rank of `worker` for a job with `placement`; higher is better. For prefer-gpu and require-gpu a
/// GPU worker ranks above every CPU worker, and GPUs among themselves by device_score(). Otherwise
/// (any, cpu-only, or a CPU worker) the rank is the fraction of free slots.
double placement_rank(Placement placement, const WorkerRecord& worker);

}  // namespace bridge::broker
