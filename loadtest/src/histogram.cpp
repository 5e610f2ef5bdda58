#include "histogram.hpp"

#include <algorithm>
#include <bit>
#include <cmath>

namespace bridge::loadtest {
namespace {

constexpr std::uint64_t kExact = 128;    // values below this have a bucket each
constexpr std::uint64_t kPerOctave = 64;  // linear buckets per power of two above that
constexpr std::size_t kBuckets = kExact + (64 - 7) * kPerOctave;

}  // namespace

LatencyHistogram::LatencyHistogram() : counts_(kBuckets, 0) {}

std::size_t LatencyHistogram::index_of(std::uint64_t us) {
  if (us < kExact) return static_cast<std::size_t>(us);
  const int msb = 63 - std::countl_zero(us);  // >= 7
  const int shift = msb - 6;                   // keeps the top 7 bits: 64..127
  const std::uint64_t top = us >> shift;
  return static_cast<std::size_t>(kExact + static_cast<std::uint64_t>(shift - 1) * kPerOctave + (top - kPerOctave));
}

std::uint64_t LatencyHistogram::upper_edge(std::size_t index) {
  if (index < kExact) return index;
  const std::uint64_t shift = (index - kExact) / kPerOctave + 1;
  const std::uint64_t top = (index - kExact) % kPerOctave + kPerOctave;
  return ((top + 1) << shift) - 1;
}

void LatencyHistogram::record(std::uint64_t us) {
  ++counts_[index_of(us)];
  ++count_;
  max_ = std::max(max_, us);
}

void LatencyHistogram::merge(const LatencyHistogram& other) {
  for (std::size_t i = 0; i < counts_.size(); ++i) counts_[i] += other.counts_[i];
  count_ += other.count_;
  max_ = std::max(max_, other.max_);
}

std::uint64_t LatencyHistogram::percentile(double p) const {
  if (count_ == 0) return 0;
  const auto rank =
      std::max<std::uint64_t>(1, static_cast<std::uint64_t>(std::ceil(p / 100.0 * static_cast<double>(count_))));
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < counts_.size(); ++i) {
    seen += counts_[i];
    if (seen >= rank) return std::min(upper_edge(i), max_);
  }
  return max_;
}

std::vector<std::pair<std::uint64_t, std::uint64_t>> LatencyHistogram::buckets() const {
  std::vector<std::pair<std::uint64_t, std::uint64_t>> out;
  for (std::size_t i = 0; i < counts_.size(); ++i)
    if (counts_[i] > 0) out.emplace_back(std::min(upper_edge(i), max_), counts_[i]);
  return out;
}

}  // namespace bridge::loadtest
