#pragma once
/// @file Metrics: counters, gauges and histograms with labels, rendered in the Prometheus text
/// format (version 0.0.4), served by MetricsServer (metrics_server.hpp).

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace bridge::metrics {

/// Label names and values, in the order given (keep one order per family).
using Labels = std::vector<std::pair<std::string, std::string>>;

/// Thread-safe: the service loop writes, the HTTP thread renders. One mutex; every call is a map
/// lookup and an add, cheap next to a job's ZeroMQ and FlatBuffers work.
class Registry {
 public:
  enum class Type { kCounter, kGauge, kHistogram };

  /// Declares a family (name in Prometheus style, with its unit: `bridge_jobs_total`,
  /// `bridge_job_latency_seconds`). Histograms take their bucket upper bounds.
  void describe(std::string_view name, Type type, std::string help, std::vector<double> buckets = {});

  void add(std::string_view name, const Labels& labels, double delta = 1);  ///< counter
  void set(std::string_view name, const Labels& labels, double value);      ///< gauge
  void observe(std::string_view name, const Labels& labels, double value);  ///< histogram
  /// Drops every series of `name` whose label `key` is `value` (a worker that left).
  void remove(std::string_view name, const std::string& key, const std::string& value);

  /// Value of one counter or gauge series; 0 if absent (for tests and bridgectl).
  double value(std::string_view name, const Labels& labels) const;

  std::string render() const;

 private:
  struct Series {
    Labels labels;
    double value = 0;                    // counter, gauge
    std::vector<std::uint64_t> buckets;  // histogram: per upper bound, not cumulative
    std::uint64_t count = 0;
    double sum = 0;
  };
  struct Family {
    Type type = Type::kCounter;
    std::string help;
    std::vector<double> bounds;
    std::map<std::string, Series> series;  // by rendered label set
  };
  Family& family(std::string_view name);
  Series& series(Family& f, const Labels& labels, Type type);

  mutable std::mutex mutex_;
  std::map<std::string, Family, std::less<>> families_;  // found by a name's view, without a copy
  std::string key_;  ///< series(): the label key being looked up, its storage kept from call to call
};

/// Latency buckets in seconds, 100 us to 60 s.
std::vector<double> latency_buckets();

}  // namespace bridge::metrics
