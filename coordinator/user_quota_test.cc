#include "coordinator/user_quota.h"

#include "gtest/gtest.h"

namespace fetchfleet::coordinator {
namespace {

TEST(UserQuotaTest, JobsAtOnce) {
  UserQuota quota(UserLimits{2, 0, 0});
  EXPECT_TRUE(quota.CheckNewJob("alice", 1).ok());
  absl::Status full = quota.CheckNewJob("alice", 2);
  EXPECT_TRUE(absl::IsResourceExhausted(full));
  EXPECT_NE(full.message().find("--user-max-jobs 2"), std::string::npos);
}

TEST(UserQuotaTest, RequestsOverASlidingHour) {
  UserQuota quota(UserLimits{0, 100, 0});
  absl::Time t0 = absl::FromUnixSeconds(1'800'000'000);
  EXPECT_TRUE(quota.ChargeRequests("alice", 60, t0).ok());
  EXPECT_TRUE(quota.ChargeRequests("alice", 40, t0 + absl::Minutes(30)).ok());
  // Refused, and not counted.
  EXPECT_TRUE(absl::IsResourceExhausted(
      quota.ChargeRequests("alice", 1, t0 + absl::Minutes(59))));
  // Others have their own hour.
  EXPECT_TRUE(quota.ChargeRequests("bob", 100, t0).ok());
  // An hour after the first 60, they no longer count.
  EXPECT_TRUE(quota.ChargeRequests("alice", 60, t0 + absl::Minutes(61)).ok());
  EXPECT_FALSE(quota.ChargeRequests("alice", 1, t0 + absl::Minutes(62)).ok());
  // Two hours of silence: a whole hour free again.
  EXPECT_TRUE(quota.ChargeRequests("alice", 100, t0 + absl::Hours(3)).ok());
}

TEST(UserQuotaTest, AggregatesAtOnce) {
  UserQuota quota(UserLimits{0, 0, 2});
  EXPECT_TRUE(quota.StartAggregate("alice").ok());
  EXPECT_TRUE(quota.StartAggregate("alice").ok());
  EXPECT_TRUE(absl::IsResourceExhausted(quota.StartAggregate("alice")));
  EXPECT_TRUE(quota.StartAggregate("bob").ok());
  quota.EndAggregate("alice");
  EXPECT_TRUE(quota.StartAggregate("alice").ok());
}

TEST(UserQuotaTest, ZeroMeansNoLimit) {
  UserQuota quota(UserLimits{0, 0, 0});
  EXPECT_TRUE(quota.CheckNewJob("alice", 1'000'000).ok());
  EXPECT_TRUE(quota.ChargeRequests("alice", 1'000'000'000, absl::Now()).ok());
  for (int i = 0; i < 1000; ++i) EXPECT_TRUE(quota.StartAggregate("a").ok());
}

}  // namespace
}  // namespace fetchfleet::coordinator
