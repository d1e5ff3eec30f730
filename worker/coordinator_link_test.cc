#include "worker/coordinator_link.h"

#include "gtest/gtest.h"

namespace fetchfleet::worker {
namespace {

// A batch keeps everything its messages carried: a pause or breaker change
// queued behind completions once went missing here.
TEST(MergeWorkerMessages, KeepsEveryPart) {
  std::vector<v1::WorkerMessage> queue(3);
  queue[0].set_credit(1);
  queue[0].add_completions()->set_lease_id(1);
  queue[1].set_credit(2);
  queue[1].add_completions()->set_lease_id(2);
  queue[1].add_paused()->set_key("api");
  queue[1].set_in_flight(7);
  queue[2].add_breaker_events()->set_key("api");
  queue[2].add_released(9);
  queue[2].set_in_flight(5);
  v1::WorkerMessage merged = MergeWorkerMessages(&queue);
  EXPECT_TRUE(queue.empty());
  EXPECT_EQ(merged.credit(), 3u);
  ASSERT_EQ(merged.completions_size(), 2);
  EXPECT_EQ(merged.completions(1).lease_id(), 2u);
  ASSERT_EQ(merged.paused_size(), 1);
  EXPECT_EQ(merged.paused(0).key(), "api");
  ASSERT_EQ(merged.breaker_events_size(), 1);
  EXPECT_EQ(merged.released_size(), 1);
  EXPECT_EQ(merged.in_flight(), 5u);
}

}  // namespace
}  // namespace fetchfleet::worker
