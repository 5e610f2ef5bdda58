#pragma once
// Reading a process's /metrics (and /healthz, /readyz) over HTTP on 127.0.0.1, for tests.

#include <string>

namespace bridge::testing {

/// GET `path` from 127.0.0.1:`port`; the body, or "<no answer>". `status` gets the HTTP status.
std::string http_get(int port, const std::string& path, int* status = nullptr);

/// The value of one sample line of a Prometheus text page, e.g. `bridge_jobs_total{tenant="default",...}`;
/// -1 if absent.
double metric_sample(const std::string& text, const std::string& series);

}  // namespace bridge::testing
