#pragma once
// LatencyHistogram: a log-linear histogram of latencies in microseconds, as HdrHistogram does it:
// exact below 128 us, then 64 linear buckets per power of two, so every recorded value is known to
// within 1/64 (1.6%) with a fixed 30 KB whatever the run's length. Not thread-safe.

#include <cstdint>
#include <vector>

namespace bridge::loadtest {

class LatencyHistogram {
 public:
  LatencyHistogram();
  void record(std::uint64_t us);
  void merge(const LatencyHistogram& other);

  std::uint64_t count() const { return count_; }
  std::uint64_t max() const { return max_; }
  /// The smallest value v such that at least p% of the recorded values are <= v (to the bucket's
  /// upper edge, never above the maximum); 0 when empty.
  std::uint64_t percentile(double p) const;

  /// Non-empty buckets as (upper edge in us, count), ascending: for CSV and plots.
  std::vector<std::pair<std::uint64_t, std::uint64_t>> buckets() const;

 private:
  static std::size_t index_of(std::uint64_t us);
  static std::uint64_t upper_edge(std::size_t index);

  std::vector<std::uint64_t> counts_;
  std::uint64_t count_ = 0;
  std::uint64_t max_ = 0;
};

}  // namespace bridge::loadtest
