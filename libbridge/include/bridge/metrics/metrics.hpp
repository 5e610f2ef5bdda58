#pragma once
/// @file Metrics: counters, gauges and histograms with labels, rendered in the Prometheus text
/// format (version 0.0.4), served by MetricsServer (metrics_server.hpp).

#include <cstdint>
#include <initializer_list>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace bridge::metrics {

/// Label names and values, in the order given (keep one order per family).
using Labels = std::vector<std::pair<std::string, std::string>>;
/// The same, as a call gives them: `{{"tenant", name}, {"status", "OK"}}`, nothing copied.
using LabelRefs = std::initializer_list<std::pair<std::string_view, std::string_view>>;

/// Thread-safe: the service loop writes, the HTTP thread renders. One mutex; a call by name and
/// labels renders the labels and looks the series up (about 0.2 µs), a Handle only adds.
class Registry {
  struct Series;

 public:
  enum class Type { kCounter, kGauge, kHistogram };

  /// One series, found once and kept by a hot path (a job's counters, several per job in the broker
  /// and in each worker), which then adds to it without building labels or searching. Valid while
  /// its registry lives: remove() leaves alone a series a handle was taken for. Empty by default.
  class Handle {
   public:
    explicit operator bool() const { return series_ != nullptr; }
    void add(double delta = 1);  ///< counter
    void observe(double value);  ///< histogram

   private:
    friend class Registry;
    Registry* registry_ = nullptr;
    Series* series_ = nullptr;
    const std::vector<double>* bounds_ = nullptr;  ///< a histogram's
  };

  /// Declares a family (name in Prometheus style, with its unit: `bridge_jobs_total`,
  /// `bridge_job_latency_seconds`). Histograms take their bucket upper bounds.
  void describe(std::string_view name, Type type, std::string help, std::vector<double> buckets = {});

  void add(std::string_view name, LabelRefs labels, double delta = 1);  ///< counter
  void set(std::string_view name, LabelRefs labels, double value);      ///< gauge
  void observe(std::string_view name, LabelRefs labels, double value);  ///< histogram
  /// The series of `name` with `labels` (made now if new), for Handle::add or Handle::observe.
  Handle handle(std::string_view name, LabelRefs labels, Type type);
  /// Drops every series of `name` whose label `key` is `value` (a worker that left).
  void remove(std::string_view name, const std::string& key, const std::string& value);

  /// Value of one counter or gauge series; 0 if absent (for tests and bridgectl).
  double value(std::string_view name, LabelRefs labels) const;

  std::string render() const;

 private:
  struct Series {
    Labels labels;
    double value = 0;                    // counter, gauge
    std::vector<std::uint64_t> buckets;  // histogram: per upper bound, not cumulative
    std::uint64_t count = 0;
    double sum = 0;
    bool held = false;  // a Handle points here: remove() leaves it
  };
  struct Family {
    Type type = Type::kCounter;
    std::string help;
    std::vector<double> bounds;
    std::map<std::string, Series> series;  // by rendered label set
  };
  Family& family(std::string_view name);
  Series& series(Family& f, LabelRefs labels, Type type);
  static void observe(Series& s, const std::vector<double>& bounds, double value);

  mutable std::mutex mutex_;
  std::map<std::string, Family, std::less<>> families_;  // found by a name's view, without a copy
  std::string key_;  ///< series(): the label key being looked up, its storage kept from call to call
};

/// Latency buckets in seconds, 100 us to 60 s.
std::vector<double> latency_buckets();

}  // namespace bridge::metrics
