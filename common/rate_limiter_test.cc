#include "common/rate_limiter.h"

#include <algorithm>
#include <deque>
#include <thread>

#include "gtest/gtest.h"
#include "tests/testing/fake_clock.h"

namespace fetchfleet {
namespace {

TEST(ParseRateTest, Units) {
  EXPECT_DOUBLE_EQ(*ParseRate("10/s"), 10);
  EXPECT_DOUBLE_EQ(*ParseRate("600/m"), 10);
  EXPECT_DOUBLE_EQ(*ParseRate("0.5/s"), 0.5);
  EXPECT_DOUBLE_EQ(*ParseRate("3600/h"), 1);
  EXPECT_FALSE(ParseRate("10").ok());
  EXPECT_FALSE(ParseRate("0/s").ok());
  EXPECT_FALSE(ParseRate("-1/s").ok());
  EXPECT_FALSE(ParseRate("10/d").ok());
}

// Counts starts in every window of `window` and returns the largest count.
int MaxInWindow(const std::vector<absl::Time>& starts, absl::Duration window) {
  int best = 0;
  std::deque<absl::Time> in;
  for (absl::Time t : starts) {
    in.push_back(t);
    while (in.front() <= t - window) in.pop_front();
    best = std::max<int>(best, in.size());
  }
  return best;
}

TEST(GcraTest, NeverExceedsRateTimesWindowPlusBurst) {
  RateLimit limit{10, 4};
  absl::Time now = absl::UnixEpoch();
  absl::Time tat = now;
  std::vector<absl::Time> starts;
  // A greedy caller asks 200 times at the same instant, then again after idle
  // gaps.
  for (int i = 0; i < 200; ++i) starts.push_back(GcraReserve(limit, now, &tat));
  now += absl::Seconds(60);
  for (int i = 0; i < 50; ++i) starts.push_back(GcraReserve(limit, now, &tat));
  std::sort(starts.begin(), starts.end());
  for (absl::Duration w : {absl::Milliseconds(1), absl::Milliseconds(100),
                           absl::Seconds(1), absl::Seconds(7)}) {
    int bound = static_cast<int>(limit.per_second * absl::ToDoubleSeconds(w)) +
                limit.burst;
    EXPECT_LE(MaxInWindow(starts, w), bound) << w;
  }
  // Burst: the first 4 start at once, the 5th one interval later.
  EXPECT_EQ(starts[3], absl::UnixEpoch());
  EXPECT_EQ(starts[4], absl::UnixEpoch() + absl::Milliseconds(100));
  // Utilisation: 200 requests at 10/s with burst 4 take (200-4)/10 s.
  EXPECT_EQ(starts[199], absl::UnixEpoch() + absl::Milliseconds(19600));
}

TEST(GcraTest, FractionalRateAndIdleDoesNotBank) {
  RateLimit limit{0.5, 1};
  absl::Time now = absl::UnixEpoch();
  absl::Time tat = now;
  EXPECT_EQ(GcraReserve(limit, now, &tat), now);
  EXPECT_EQ(GcraReserve(limit, now, &tat), now + absl::Seconds(2));
  // A long idle period banks at most the burst, not the idle time.
  now += absl::Hours(1);
  EXPECT_EQ(GcraReserve(limit, now, &tat), now);
  EXPECT_EQ(GcraReserve(limit, now, &tat), now + absl::Seconds(2));
}

TEST(LocalRateLimiterTest, UnlimitedKeysGoAtOnceLimitedKeysWait) {
  testing::FakeClock clock;
  LimitTable table(&clock);
  LocalRateLimiter limiter(&clock, &table);
  table.SetLimit("api", RateLimit{2, 1});
  std::vector<absl::Duration> delays;
  for (int i = 0; i < 3; ++i) {
    limiter.Reserve("api", [&](absl::Duration d) { delays.push_back(d); });
  }
  limiter.Reserve("other", [&](absl::Duration d) { delays.push_back(d); });
  EXPECT_EQ(delays, (std::vector<absl::Duration>{
                        absl::ZeroDuration(), absl::Milliseconds(500),
                        absl::Seconds(1), absl::ZeroDuration()}));
  clock.Advance(absl::Seconds(10));
  table.Replace(v1::LimitTable());  // the coordinator dropped the limit
  limiter.Reserve(
      "api", [&](absl::Duration d) { EXPECT_EQ(d, absl::ZeroDuration()); });
}

TEST(LocalRateLimiterTest, FetchLoopsOnManyThreadsShareOneSchedule) {
  // A worker's fetch loops share one limiter: no slot may be handed out twice.
  testing::FakeClock clock;
  LimitTable table(&clock);
  LocalRateLimiter limiter(&clock, &table);
  table.SetLimit("api", RateLimit{100, 1});
  constexpr int kThreads = 4;
  constexpr int kEach = 250;
  std::vector<std::vector<absl::Duration>> delays(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        limiter.Reserve("api",
                        [&, t](absl::Duration d) { delays[t].push_back(d); });
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  std::vector<absl::Duration> all;
  for (const auto& d : delays) all.insert(all.end(), d.begin(), d.end());
  std::sort(all.begin(), all.end());
  ASSERT_EQ(all.size(), size_t{kThreads * kEach});
  // At 100/s with burst 1 and a clock that does not move, the slots are exactly
  // 0, 10 ms, 20 ms, ...: each handed out once.
  for (size_t i = 0; i < all.size(); ++i) {
    EXPECT_EQ(all[i], absl::Milliseconds(10) * static_cast<int64_t>(i)) << i;
  }
}

}  // namespace
}  // namespace fetchfleet
