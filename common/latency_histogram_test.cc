#include "common/latency_histogram.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace fetchfleet {
namespace {

// The documented bound: 1/64 of the value, plus the half microsecond that
// rounding to microseconds may cost.
double Bound(double ms) { return ms / 64.0 + 0.0005; }

// Reference: the nearest-rank quantile of sorted values.
double Reference(const std::vector<double>& sorted, double q) {
  size_t rank = static_cast<size_t>(std::ceil(q * sorted.size()));
  rank = std::clamp<size_t>(rank, 1, sorted.size());
  return sorted[rank - 1];
}

void ExpectPercentilesWithinBound(std::vector<double> values) {
  LatencyHistogram h;
  for (double v : values) h.Record(v);
  std::sort(values.begin(), values.end());
  ASSERT_EQ(h.count(), values.size());
  for (double q : {0.0, 0.01, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 1.0}) {
    double want = Reference(values, q);
    EXPECT_NEAR(h.Percentile(q), want, Bound(want)) << "q=" << q;
  }
  EXPECT_NEAR(h.max_ms(), values.back(), 0.0005);
  EXPECT_NEAR(h.min_ms(), values.front(), 0.0005);
}

TEST(LatencyHistogramTest, EmptyIsZero) {
  LatencyHistogram h;
  EXPECT_EQ(h.count(), 0u);
  EXPECT_EQ(h.Percentile(0.5), 0);
  EXPECT_EQ(h.max_ms(), 0);
  EXPECT_EQ(h.min_ms(), 0);
}

TEST(LatencyHistogramTest, OneValueIsExact) {
  LatencyHistogram h;
  h.Record(41.2);
  EXPECT_DOUBLE_EQ(h.Percentile(0.5), 41.2);  // clamped to min = max
  EXPECT_DOUBLE_EQ(h.Percentile(0.99), 41.2);
  EXPECT_DOUBLE_EQ(h.max_ms(), 41.2);
}

TEST(LatencyHistogramTest, LogNormalLatenciesWithinBound) {
  std::mt19937_64 gen(7);
  std::lognormal_distribution<double> dist(std::log(40.0), 1.0);  // ms
  std::vector<double> values;
  for (int i = 0; i < 100000; ++i) values.push_back(dist(gen));
  ExpectPercentilesWithinBound(values);
}

TEST(LatencyHistogramTest, UniformOverSixDecadesWithinBound) {
  std::mt19937_64 gen(11);
  std::uniform_real_distribution<double> exponent(-3, 6);  // 1 µs to 1000 s
  std::vector<double> values;
  for (int i = 0; i < 50000; ++i) values.push_back(std::pow(10, exponent(gen)));
  ExpectPercentilesWithinBound(values);
}

TEST(LatencyHistogramTest, SmallSetsWithinBound) {
  ExpectPercentilesWithinBound({5});
  ExpectPercentilesWithinBound({1, 2, 3});
  ExpectPercentilesWithinBound({0.5, 0.5, 0.5, 900, 1000});
  ExpectPercentilesWithinBound({0, 0.001, 0.031, 0.032, 0.033, 0.064});
}

TEST(LatencyHistogramTest, BucketsTileTheRangeAndStayNarrow) {
  uint64_t expected_low = 0;
  for (int i = 0; i < LatencyHistogram::kBuckets - 1; ++i) {
    uint64_t low, high;
    LatencyHistogram::BucketRange(i, &low, &high);
    ASSERT_EQ(low, expected_low) << i;
    ASSERT_GT(high, low);
    // At most 1/32 of its lower edge wide (or one microsecond).
    ASSERT_LE(high - low, std::max<uint64_t>(1, low / 32)) << i;
    EXPECT_EQ(LatencyHistogram::BucketIndex(low), i);
    EXPECT_EQ(LatencyHistogram::BucketIndex(high - 1), i);
    expected_low = high;
  }
  EXPECT_EQ(expected_low, uint64_t{1} << LatencyHistogram::kMaxExponent);
  EXPECT_EQ(LatencyHistogram::BucketIndex(UINT64_MAX),
            LatencyHistogram::kBuckets - 1);
}

TEST(LatencyHistogramTest, HugeAndBadValuesAreBoundedAndMaxStaysExact) {
  LatencyHistogram h;
  h.Record(-5);
  h.Record(std::nan(""));
  h.Record(INFINITY);
  h.Record(3600e3);  // an hour, past the last bucket's edge
  EXPECT_EQ(h.count(), 4u);
  EXPECT_EQ(h.min_ms(), 0);
  EXPECT_DOUBLE_EQ(h.max_ms(), 3600e3);
  EXPECT_DOUBLE_EQ(h.Percentile(1.0), 3600e3);
}

TEST(LatencyHistogramTest, MergeEqualsRecordingEverything) {
  std::mt19937_64 gen(3);
  std::exponential_distribution<double> dist(1 / 20.0);
  LatencyHistogram a, b, all;
  std::vector<double> values;
  for (int i = 0; i < 20000; ++i) {
    double v = dist(gen);
    (i % 3 == 0 ? a : b).Record(v);
    all.Record(v);
    values.push_back(v);
  }
  a.Merge(b);
  EXPECT_EQ(a.count(), all.count());
  for (double q : {0.5, 0.9, 0.99, 1.0})
    EXPECT_DOUBLE_EQ(a.Percentile(q), all.Percentile(q));
  EXPECT_DOUBLE_EQ(a.max_ms(), all.max_ms());
  EXPECT_DOUBLE_EQ(a.min_ms(), all.min_ms());
}

}  // namespace
}  // namespace fetchfleet
