#include "common/latency_histogram.h"

#include <algorithm>
#include <cmath>

namespace fetchfleet {
namespace {

constexpr uint64_t kSubBuckets = uint64_t{1}
                                 << LatencyHistogram::kSubBucketBits;

int Log2(uint64_t v) { return 63 - __builtin_clzll(v); }

}  // namespace

int LatencyHistogram::BucketIndex(uint64_t us) {
  if (us < kSubBuckets) return static_cast<int>(us);
  int exponent = Log2(us);
  if (exponent >= kMaxExponent) return kBuckets - 1;
  // The kSubBucketBits bits after the leading one pick the sub-bucket.
  uint64_t sub = (us >> (exponent - kSubBucketBits)) - kSubBuckets;
  return static_cast<int>(kSubBuckets * (exponent - kSubBucketBits + 1) + sub);
}

void LatencyHistogram::BucketRange(int index, uint64_t* low, uint64_t* high) {
  if (index < static_cast<int>(kSubBuckets)) {
    *low = index;
    *high = index + 1;
    return;
  }
  if (index >= kBuckets - 1) {
    *low = uint64_t{1} << kMaxExponent;
    *high = UINT64_MAX;
    return;
  }
  int exponent = index / kSubBuckets - 1 + kSubBucketBits;
  uint64_t sub = index % kSubBuckets;
  uint64_t width = uint64_t{1} << (exponent - kSubBucketBits);
  *low = (uint64_t{1} << exponent) + sub * width;
  *high = *low + width;
}

void LatencyHistogram::Record(double ms) {
  // Bounded before the cast: a huge double must not overflow the integer.
  double us = std::isfinite(ms) && ms > 0 ? std::round(ms * 1000.0) : 0.0;
  uint64_t value =
      us >= 1e18 ? uint64_t{1000000000000000000} : static_cast<uint64_t>(us);
  size_t index = BucketIndex(value);
  if (counts_.size() <= index) counts_.resize(index + 1);
  ++counts_[index];
  ++count_;
  min_us_ = std::min(min_us_, value);
  max_us_ = std::max(max_us_, value);
}

void LatencyHistogram::Merge(const LatencyHistogram& other) {
  if (counts_.size() < other.counts_.size())
    counts_.resize(other.counts_.size());
  for (size_t i = 0; i < other.counts_.size(); ++i)
    counts_[i] += other.counts_[i];
  count_ += other.count_;
  min_us_ = std::min(min_us_, other.min_us_);
  max_us_ = std::max(max_us_, other.max_us_);
}

double LatencyHistogram::Percentile(double q) const {
  if (count_ == 0) return 0;
  q = std::clamp(std::isnan(q) ? 0.0 : q, 0.0, 1.0);
  uint64_t rank = static_cast<uint64_t>(std::ceil(q * count_));
  rank = std::clamp<uint64_t>(rank, 1, count_);
  uint64_t seen = 0;
  for (size_t i = 0; i < counts_.size(); ++i) {
    seen += counts_[i];
    if (seen < rank) continue;
    uint64_t low, high;
    BucketRange(static_cast<int>(i), &low, &high);
    // An exact bucket (one microsecond wide) is its value; a wider one is
    // reported at its middle, which halves the worst error.
    double us =
        high - low <= 1 ? static_cast<double>(low) : low + (high - low) / 2.0;
    us = std::clamp(us, static_cast<double>(min_us_),
                    static_cast<double>(max_us_));
    return us / 1000.0;
  }
  return max_ms();
}

LatencyHistogram LatencyHistogram::Restore(std::vector<uint64_t> buckets,
                                           uint64_t count, uint64_t min_us,
                                           uint64_t max_us) {
  LatencyHistogram h;
  if (buckets.size() > static_cast<size_t>(kBuckets)) buckets.resize(kBuckets);
  h.counts_ = std::move(buckets);
  h.count_ = count;
  h.min_us_ = min_us;
  h.max_us_ = max_us;
  return h;
}

}  // namespace fetchfleet
