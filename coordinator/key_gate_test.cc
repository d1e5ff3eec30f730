#include "coordinator/key_gate.h"

#include "gtest/gtest.h"
#include "tests/testing/fake_clock.h"

namespace fetchfleet::coordinator {
namespace {

TEST(KeyGateTest, UnlimitedKeysAreNeverHeldBack) {
  testing::FakeClock clock;
  KeyGate gate(&clock);
  for (int i = 0; i < 100000; ++i) ASSERT_TRUE(gate.Admit("free"));
  EXPECT_GT(gate.Room("free"), 1000000u);
}

TEST(KeyGateTest, LimitedKeyCapCoversTwoSecondsOfRatePlusBurst) {
  testing::FakeClock clock;
  KeyGate gate(&clock);
  gate.SetLimits({{"slow", RateLimit{1, 1}}, {"fast", RateLimit{100, 10}}});
  // 1/s: the floor of 8 out at once; 100/s: 200 + 10.
  EXPECT_EQ(gate.Room("slow"), 8u);
  EXPECT_EQ(gate.Room("fast"), 210u);
  for (int i = 0; i < 8; ++i) ASSERT_TRUE(gate.Admit("slow"));
  EXPECT_FALSE(gate.Admit("slow"));
  EXPECT_EQ(gate.Room("slow"), 0u);
  gate.Release("slow", 1);
  EXPECT_EQ(gate.Room("slow"), 1u);
  EXPECT_TRUE(gate.Admit("slow"));
}

TEST(KeyGateTest, RaisingALimitReportsTheKeysThatGrew) {
  testing::FakeClock clock;
  KeyGate gate(&clock);
  gate.SetLimits({{"a", RateLimit{1, 1}}, {"b", RateLimit{100, 1}}});
  std::vector<std::string> grew =
      gate.SetLimits({{"a", RateLimit{50, 1}}, {"b", RateLimit{10, 1}}});
  EXPECT_EQ(grew, std::vector<std::string>{"a"});
  // Deleting a limit lifts the cap entirely.
  grew = gate.SetLimits({{"a", RateLimit{50, 1}}});
  EXPECT_EQ(grew, std::vector<std::string>{"b"});
}

TEST(KeyGateTest, PauseClosesTheKeyUntilItRunsOut) {
  testing::FakeClock clock;
  KeyGate gate(&clock);
  EXPECT_TRUE(gate.Pause("api", clock.Now() + absl::Seconds(2)));
  EXPECT_FALSE(gate.Pause("api", clock.Now() + absl::Seconds(1)));  // shorter
  EXPECT_FALSE(gate.Admit("api"));  // unlimited, but paused
  EXPECT_TRUE(gate.ExpirePauses().empty());
  v1::LimitTable table = gate.Table(3);
  ASSERT_EQ(table.limits_size(), 1);
  EXPECT_EQ(table.limits(0).paused_ms(), 2000);
  EXPECT_EQ(table.live_workers(), 3u);
  clock.Advance(absl::Seconds(2));
  EXPECT_EQ(gate.ExpirePauses(), std::vector<std::string>{"api"});
  EXPECT_TRUE(gate.Admit("api"));
}

TEST(KeyGateTest, ListingShowsAchievedRateAndWaiting) {
  testing::FakeClock clock;
  clock.Set(absl::FromUnixSeconds(1000000));  // the start of a 10 s window
  KeyGate gate(&clock);
  gate.SetLimits({{"api", RateLimit{10, 2}}});
  gate.OnParked("api", 5);
  EXPECT_TRUE(gate.HasParked("api"));
  // 50 starts in 5 s, 20 of them retries of 10 requests.
  for (int i = 0; i < 30; ++i) {
    ASSERT_TRUE(gate.Admit("api"));
    gate.Release("api", i < 10 ? 3 : 1);
  }
  clock.Advance(absl::Seconds(5));
  v1::LimitTable listing = gate.Listing(1);
  ASSERT_EQ(listing.limits_size(), 1);
  const v1::KeyLimit& api = listing.limits(0);
  EXPECT_DOUBLE_EQ(api.per_second(), 10);
  EXPECT_EQ(api.burst(), 2);
  EXPECT_EQ(api.waiting(), 5);
  EXPECT_DOUBLE_EQ(api.achieved_per_second(), 5);  // 50 starts / 10 s window
  // Half of the next window later, half of those still count.
  clock.Advance(absl::Seconds(10));
  EXPECT_DOUBLE_EQ(gate.Listing(1).limits(0).achieved_per_second(), 2.5);
  gate.OnParked("api", -5);
  EXPECT_FALSE(gate.HasParked("api"));
}

}  // namespace
}  // namespace fetchfleet::coordinator
