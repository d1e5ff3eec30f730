#include "worker/breaker_set.h"

#include "gtest/gtest.h"
#include "tests/testing/fake_clock.h"
#include "worker/breaker_events.h"

namespace fetchfleet::worker {
namespace {

// Script replies and pub/sub events can arrive out of order: a record reply
// computed before a trip may land after the trip's event. The newest change
// wins, whatever the order.
TEST(BreakerSet, NewestChangeWinsWhateverTheOrder) {
  testing::FakeClock clock;
  BreakerSet set(&clock);
  set.SetView("api", BreakerState::kOpen, absl::Seconds(5), /*version=*/100);
  set.SetView("api", BreakerState::kClosed, absl::ZeroDuration(), 90);
  EXPECT_FALSE(set.ViewClosed("api"));
  EXPECT_TRUE(set.ViewHolding("api"));
  set.SetView("api", BreakerState::kClosed, absl::ZeroDuration(), 200);
  EXPECT_TRUE(set.ViewClosed("api"));
  set.SetView("api", BreakerState::kOpen, absl::Seconds(5), 150);
  EXPECT_TRUE(set.ViewClosed("api"));
  // The open period ends on the worker's clock.
  set.SetView("api", BreakerState::kOpen, absl::Seconds(5), 300);
  clock.Advance(absl::Seconds(5));
  EXPECT_FALSE(set.ViewHolding("api"));
  EXPECT_FALSE(set.ViewClosed("api"));  // open, its probe due
}

TEST(BreakerEvents, ParsesMessagesAndRejectsMalformedOnes) {
  testing::FakeClock clock;
  BreakerSet set(&clock);
  EXPECT_TRUE(BreakerEvents::Apply("api\nopen\n5000\n100", &set));
  EXPECT_TRUE(set.ViewHolding("api"));
  EXPECT_FALSE(BreakerEvents::Apply("api\nopen\n5000", &set));
  EXPECT_FALSE(BreakerEvents::Apply("\nopen\n5000\n1", &set));
  EXPECT_FALSE(BreakerEvents::Apply("api\nclosed\nx\n1", &set));
  EXPECT_TRUE(BreakerEvents::Apply("api\nclosed\n0\n200", &set));
  EXPECT_TRUE(set.ViewClosed("api"));
}

}  // namespace
}  // namespace fetchfleet::worker
