// LatencyHistogram: a log-linear bucket histogram of durations, for latency
// percentiles in bounded memory (as HdrHistogram does, in miniature). Values
// are kept in microseconds: below 32 µs each microsecond has its own bucket;
// above, every power of two is cut into 32 equal buckets, so a bucket is at
// most 1/32 of its lower edge wide and a percentile, reported at its bucket's
// middle, is within 1/64 (1.6%) of the true value (plus half a microsecond of
// rounding). Values from 2^30 µs (about 18 minutes) up share the last bucket;
// max() stays exact. The bucket array grows only up to the largest value seen
// (at most kBuckets counters, 6.5 KiB), and two histograms merge by adding
// counts.
//
// Not thread-safe: one owner (a job, on the coordinator's loop).
#pragma once

#include <cstdint>
#include <vector>

namespace fetchfleet {

class LatencyHistogram {
 public:
  static constexpr int kSubBucketBits = 5;  // 32 buckets per power of two
  static constexpr int kMaxExponent = 30;   // 2^30 µs and above: one bucket
  static constexpr int kBuckets =
      (1 << kSubBucketBits) * (kMaxExponent - kSubBucketBits + 1) + 1;

  // Record adds one value, in milliseconds (negative and NaN count as 0).
  void Record(double ms);
  // Merge adds every value of `other`.
  void Merge(const LatencyHistogram& other);

  uint64_t count() const { return count_; }
  // min, max: exact, in ms (0 when empty).
  double min_ms() const { return count_ == 0 ? 0 : min_us_ / 1000.0; }
  double max_ms() const { return max_us_ / 1000.0; }
  // Percentile returns the nearest-rank q-quantile (q in [0, 1]) in ms: the
  // value of rank ceil(q * count), within the bound above, clamped to
  // [min, max]. 0 when empty.
  double Percentile(double q) const;

  // The state, to keep and restore (a job store's copy of a job's stats).
  const std::vector<uint64_t>& buckets() const { return counts_; }
  uint64_t min_us() const { return min_us_; }
  uint64_t max_us() const { return max_us_; }
  static LatencyHistogram Restore(std::vector<uint64_t> buckets, uint64_t count,
                                  uint64_t min_us, uint64_t max_us);

  // BucketIndex and BucketRange (µs, [low, high)) are exposed for tests.
  static int BucketIndex(uint64_t us);
  static void BucketRange(int index, uint64_t* low, uint64_t* high);

 private:
  std::vector<uint64_t> counts_;  // grown up to the highest bucket used
  uint64_t count_ = 0;
  uint64_t min_us_ = UINT64_MAX;
  uint64_t max_us_ = 0;
};

}  // namespace fetchfleet
