#include "coordinator/lease_table.h"

#include "gtest/gtest.h"

namespace fetchfleet::coordinator {
namespace {

v1::FetchRequest Request(uint64_t index) {
  v1::FetchRequest r;
  r.set_index(index);
  return r;
}

TEST(LeaseTableTest, CompleteEndsALeaseOnceAndOnlyForItsWorker) {
  LeaseTable table;
  absl::Time t = absl::UnixEpoch();
  uint64_t a = table.Grant(1, "j", Request(0), t, absl::Seconds(5));
  EXPECT_FALSE(
      table.Complete(a, /*worker_id=*/2).has_value());  // not its worker
  auto lease = table.Complete(a, 1);
  ASSERT_TRUE(lease.has_value());
  EXPECT_EQ(lease->request.index(), 0u);
  EXPECT_FALSE(
      table.Complete(a, 1).has_value());  // a duplicate result finds nothing
  EXPECT_EQ(table.size(), 0u);
}

TEST(LeaseTableTest, ReleaseWorkerReturnsExactlyItsLeases) {
  LeaseTable table;
  absl::Time t = absl::UnixEpoch();
  uint64_t a = table.Grant(1, "j", Request(0), t, absl::ZeroDuration());
  table.Grant(2, "j", Request(1), t, absl::ZeroDuration());
  uint64_t c = table.Grant(1, "k", Request(2), t, absl::ZeroDuration());
  EXPECT_EQ(table.CountForWorker(1), 2u);
  std::vector<Lease> released = table.ReleaseWorker(1);
  ASSERT_EQ(released.size(), 2u);
  EXPECT_EQ(table.CountForWorker(1), 0u);
  EXPECT_EQ(table.size(), 1u);
  // The dead worker's late results are now dropped.
  EXPECT_FALSE(table.Complete(a, 1).has_value());
  EXPECT_FALSE(table.Complete(c, 1).has_value());
}

TEST(LeaseTableTest, ExpiryAndJobRelease) {
  LeaseTable table;
  absl::Time t = absl::UnixEpoch();
  table.Grant(1, "j", Request(0), t, absl::Seconds(1));
  table.Grant(1, "j", Request(1), t, absl::Seconds(3));
  table.Grant(2, "k", Request(2), t, absl::Seconds(1));
  EXPECT_TRUE(table.TakeExpired(t).empty());
  EXPECT_EQ(table.TakeExpired(t + absl::Seconds(1)).size(), 2u);
  EXPECT_EQ(table.ReleaseJob("j").size(), 1u);
  EXPECT_EQ(table.size(), 0u);
}

// A key pause (Retry-After) gives that key's leases their whole plan again
// from the pause's end; other keys' leases keep their deadlines.
TEST(LeaseTableTest, AKeyPauseExtendsThatKeysLeases) {
  LeaseTable table;
  absl::Time t = absl::UnixEpoch();
  v1::FetchRequest paused = Request(0);
  paused.set_rate_key("api");
  v1::FetchRequest other = Request(1);
  other.set_rate_key("web");
  table.Grant(1, "j", paused, t, absl::Seconds(4));
  table.Grant(1, "j", other, t, absl::Seconds(4));
  table.ExtendKey("api", t + absl::Seconds(30));
  std::vector<Lease> expired = table.TakeExpired(t + absl::Seconds(4));
  ASSERT_EQ(expired.size(), 1u);
  EXPECT_EQ(expired[0].request.rate_key(), "web");
  EXPECT_TRUE(table.TakeExpired(t + absl::Seconds(33)).empty());
  EXPECT_EQ(table.TakeExpired(t + absl::Seconds(34)).size(), 1u);
}

}  // namespace
}  // namespace fetchfleet::coordinator
