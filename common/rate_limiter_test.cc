#include "common/rate_limiter.h"

#include <algorithm>
#include <cmath>
#include <deque>
#include <random>
#include <thread>

#include "gtest/gtest.h"
#include "tests/testing/fake_clock.h"
#include "tests/testing/windows.h"

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
  EXPECT_DOUBLE_EQ(*ParseRate("86400/d"), 1);
  EXPECT_FALSE(ParseRate("10/w").ok());
}

TEST(ParseRateTest, Bounds) {
  // One a day is the least: below it a key as good as stalls (and 1e-300/s
  // overflowed the GCRA's spacing).
  EXPECT_DOUBLE_EQ(*ParseRate("1/d"), kMinPerSecond);
  EXPECT_TRUE(ParseRate("24/d").ok());
  EXPECT_FALSE(ParseRate("0.5/d").ok());
  EXPECT_FALSE(ParseRate("1e-300/s").ok());
  EXPECT_NE(ParseRate("1e-300/s").status().message().find("below 1/d"),
            std::string::npos);
  EXPECT_TRUE(ParseRate("1000000/s").ok());
  EXPECT_FALSE(ParseRate("1000001/s").ok());
  EXPECT_FALSE(ParseRate("inf/s").ok());
  EXPECT_FALSE(ParseRate("nan/s").ok());
  EXPECT_EQ(FormatRate(kMinPerSecond), "1/d");
}

TEST(CheckRateLimitTest, Bounds) {
  EXPECT_TRUE(CheckRateLimit({kMinPerSecond, 1}).ok());
  EXPECT_TRUE(CheckRateLimit({kMaxPerSecond, kMaxBurst}).ok());
  EXPECT_FALSE(CheckRateLimit({1e-300, 1}).ok());
  EXPECT_FALSE(CheckRateLimit({kMinPerSecond / 2, 1}).ok());
  EXPECT_FALSE(CheckRateLimit({0, 1}).ok());
  EXPECT_FALSE(CheckRateLimit({-1, 1}).ok());
  EXPECT_FALSE(CheckRateLimit({1e7, 1}).ok());
  EXPECT_FALSE(CheckRateLimit({std::nan(""), 1}).ok());
  EXPECT_FALSE(CheckRateLimit({HUGE_VAL, 1}).ok());
  EXPECT_FALSE(CheckRateLimit({10, 0}).ok());
  EXPECT_FALSE(CheckRateLimit({10, kMaxBurst + 1}).ok());
  EXPECT_NE(CheckRateLimit({1e-300, 1}).message().find("1/d"),
            std::string::npos);
  EXPECT_NE(CheckRateLimit({10, 0}).message().find("burst"), std::string::npos);
}

TEST(CheckRateKeyTest, Keys) {
  EXPECT_TRUE(CheckRateKey("api.example.com").ok());
  EXPECT_TRUE(CheckRateKey("weather-api:v2").ok());
  EXPECT_FALSE(CheckRateKey("").ok());
  EXPECT_FALSE(CheckRateKey("a b").ok());
  EXPECT_FALSE(CheckRateKey("a\nb").ok());
  EXPECT_FALSE(CheckRateKey(std::string(257, 'k')).ok());
  EXPECT_TRUE(CheckRateKey(std::string(256, 'k')).ok());
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
    EXPECT_LE(testing::MaxInWindow(starts, w), bound) << w;
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

TEST(GcraTest, IntervalBoundary) {
  // At exactly one interval after a start, the next one is due now, not later.
  RateLimit limit{4, 1};
  absl::Time now = absl::UnixEpoch();
  absl::Time tat = now;
  EXPECT_EQ(GcraReserve(limit, now, &tat), now);
  now += absl::Milliseconds(250);
  EXPECT_EQ(GcraReserve(limit, now, &tat), now);
  now += absl::Milliseconds(249);
  EXPECT_EQ(GcraReserve(limit, now, &tat), now + absl::Milliseconds(1));
}

TEST(GcraTest, IntervalRoundsUpSoSumsNeverRunAhead) {
  // 3/s: 333333.33 us rounds up to 333333.5 us; three of them are >= 1 s.
  EXPECT_EQ(GcraInterval(3),
            absl::Microseconds(333333) + absl::Nanoseconds(500));
  EXPECT_GE(GcraInterval(3) * 3, absl::Seconds(1));
  EXPECT_EQ(GcraInterval(1000), absl::Milliseconds(1));
}

// Batch: each granted start is a slot of its own, so batches of any size give
// exactly the schedule one-at-a-time reservations give.
TEST(GcraBatchTest, BatchesGiveTheSameSlotsAsSingleReservations) {
  RateLimit limit{50000, 100};
  absl::Time now = absl::UnixEpoch();
  absl::Time single_tat = now;
  absl::Time batch_tat = now;
  std::vector<absl::Time> single, batched;
  for (int i = 0; i < 5000; ++i) {
    single.push_back(GcraReserve(limit, now, &single_tat));
  }
  while (batched.size() < 5000) {
    int64_t want =
        std::min<int64_t>(1 + batched.size() % 97, 5000 - batched.size());
    GcraGrant grant = GcraReserveBatch(limit, now, now, want,
                                       absl::InfiniteDuration(), &batch_tat);
    ASSERT_EQ(grant.delays.size(), static_cast<size_t>(want));
    for (absl::Duration d : grant.delays) batched.push_back(now + d);
  }
  EXPECT_EQ(single, batched);
  EXPECT_EQ(single_tat, batch_tat);
  GcraGrant all = GcraReserveBatch(limit, now, now, 3, absl::InfiniteDuration(),
                                   &batch_tat);
  EXPECT_EQ(all.retry_after, absl::ZeroDuration());
}

TEST(GcraBatchTest, LookaheadCapsTheBatchAndSaysWhenToAskAgain) {
  RateLimit limit{1000, 5};
  absl::Time now = absl::UnixEpoch();
  absl::Time tat = now;
  // Burst 5 at once, then one per ms up to 3 ms ahead: 5 + 3 = 8 starts.
  GcraGrant grant =
      GcraReserveBatch(limit, now, now, 100, absl::Milliseconds(3), &tat);
  ASSERT_EQ(grant.delays.size(), 8u);
  EXPECT_EQ(grant.delays[4], absl::ZeroDuration());
  EXPECT_EQ(grant.delays[5], absl::Milliseconds(1));
  EXPECT_EQ(grant.delays[7], absl::Milliseconds(3));
  EXPECT_EQ(grant.retry_after, absl::Milliseconds(1));
  // Nothing more within 3 ms: ask again when the next slot is 3 ms away.
  GcraGrant none =
      GcraReserveBatch(limit, now, now, 100, absl::Milliseconds(3), &tat);
  EXPECT_TRUE(none.delays.empty());
  EXPECT_EQ(none.retry_after, absl::Milliseconds(1));
  now += none.retry_after;
  GcraGrant next =
      GcraReserveBatch(limit, now, now, 1, absl::Milliseconds(3), &tat);
  ASSERT_EQ(next.delays.size(), 1u);
  EXPECT_EQ(next.delays[0], absl::Milliseconds(3));
}

TEST(GcraBatchTest, PauseHoldsEveryStartBackAndDoesNotBankBurst) {
  RateLimit limit{10, 3};
  absl::Time now = absl::UnixEpoch();
  absl::Time tat = now;
  absl::Time paused_until = now + absl::Seconds(2);
  GcraGrant grant = GcraReserveBatch(limit, now, paused_until, 5,
                                     absl::InfiniteDuration(), &tat);
  ASSERT_EQ(grant.delays.size(), 5u);
  // After the pause: the burst of 3, then 100 ms apart; never before 2 s.
  EXPECT_EQ(grant.delays[0], absl::Seconds(2));
  EXPECT_EQ(grant.delays[2], absl::Seconds(2));
  EXPECT_EQ(grant.delays[3], absl::Milliseconds(2100));
  EXPECT_EQ(grant.delays[4], absl::Milliseconds(2200));
}

TEST(GcraBatchTest, ClockJumpsNeitherFloodNorStall) {
  RateLimit limit{10, 2};
  absl::Time now = absl::UnixEpoch() + absl::Hours(1);
  absl::Time tat = now;
  std::vector<absl::Time> starts;
  for (int i = 0; i < 20; ++i) starts.push_back(GcraReserve(limit, now, &tat));
  // The clock jumps back an hour: the schedule already promised stands (TAT
  // is ahead of now, so new starts queue behind it), nothing floods.
  now -= absl::Hours(1);
  GcraGrant back =
      GcraReserveBatch(limit, now, now, 1, absl::InfiniteDuration(), &tat);
  ASSERT_EQ(back.delays.size(), 1u);
  EXPECT_GE(now + back.delays[0], starts.back());
  // The clock jumps forward an hour: only the burst is banked.
  now += absl::Hours(3);
  GcraGrant ahead =
      GcraReserveBatch(limit, now, now, 4, absl::InfiniteDuration(), &tat);
  EXPECT_EQ(ahead.delays,
            (std::vector<absl::Duration>{
                absl::ZeroDuration(), absl::ZeroDuration(),
                absl::Milliseconds(100), absl::Milliseconds(200)}));
}

TEST(GcraBatchTest, RandomDemandNeverBreaksTheBound) {
  // Many callers with random demand and random lookahead at random times: the
  // union of their starts holds R*W + B in every window.
  RateLimit limit{37.5, 6};
  absl::Time now = absl::UnixEpoch();
  absl::Time tat = now;
  std::vector<absl::Time> starts;
  std::mt19937 rng(7);
  for (int round = 0; round < 2000; ++round) {
    now += absl::Microseconds(rng() % 200000);
    int64_t want = 1 + rng() % 20;
    absl::Duration lookahead = absl::Microseconds(rng() % 300000);
    GcraGrant grant = GcraReserveBatch(limit, now, now, want, lookahead, &tat);
    for (absl::Duration d : grant.delays) {
      EXPECT_GE(d, absl::ZeroDuration());
      EXPECT_LE(d, lookahead);
      starts.push_back(now + d);
    }
  }
  std::sort(starts.begin(), starts.end());
  for (absl::Duration w : {absl::Milliseconds(1), absl::Milliseconds(27),
                           absl::Milliseconds(500), absl::Seconds(3)}) {
    int bound = static_cast<int>(limit.per_second * absl::ToDoubleSeconds(w)) +
                limit.burst;
    EXPECT_LE(testing::MaxInWindow(starts, w), bound) << w;
  }
}

TEST(LimitTableTest, HeadroomAndPausesAndReplace) {
  testing::FakeClock clock;
  LimitTable table(&clock);
  table.set_headroom(0.01);
  table.SetLimit("api", RateLimit{10, 2});
  KeyPolicy policy = table.Lookup("api");
  ASSERT_TRUE(policy.limit.has_value());
  EXPECT_DOUBLE_EQ(policy.limit->per_second, 9.9);
  EXPECT_EQ(policy.limit->burst, 2);
  EXPECT_FALSE(table.Lookup("other").limit.has_value());
  // A pause is kept until it runs out, also for an unlimited key.
  std::vector<std::string> heard;
  table.set_pause_listener(
      [&](const std::string& key, absl::Duration) { heard.push_back(key); });
  table.Pause("other", absl::Seconds(3));
  EXPECT_EQ(table.Lookup("other").paused_until, clock.Now() + absl::Seconds(3));
  EXPECT_EQ(heard, std::vector<std::string>{"other"});
  clock.Advance(absl::Seconds(4));
  v1::LimitTable pushed;
  v1::KeyLimit* entry = pushed.add_limits();
  entry->set_key("api");
  entry->set_per_second(100);
  entry->set_burst(0);  // read as 1
  entry->set_paused_ms(500);
  pushed.set_live_workers(4);
  table.Replace(pushed);
  EXPECT_EQ(table.Lookup("other").paused_until, absl::InfinitePast());
  EXPECT_EQ(table.Lookup("api").limit->burst, 1);
  EXPECT_EQ(table.Lookup("api").paused_until,
            clock.Now() + absl::Milliseconds(500));
  EXPECT_EQ(table.live_workers(), 4u);
}

TEST(LocalRateLimiterTest, EachWorkerTakesItsShareOfTheRate) {
  // --redis-failure=local (and no Redis at all): R and B divided by the live
  // workers, so the fleet together stays within the limit.
  testing::FakeClock clock;
  LimitTable table(&clock);
  LocalRateLimiter limiter(&clock, &table);
  v1::LimitTable pushed;
  v1::KeyLimit* entry = pushed.add_limits();
  entry->set_key("api");
  entry->set_per_second(30);
  entry->set_burst(3);
  pushed.set_live_workers(3);
  table.Replace(pushed);
  EXPECT_EQ(limiter.DelayFor("api"), absl::ZeroDuration());
  EXPECT_EQ(limiter.DelayFor("api"), absl::Milliseconds(100));  // 10/s, burst 1
  EXPECT_EQ(limiter.DelayFor("api"), absl::Milliseconds(200));
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
