#include "coordinator/job.h"

#include "gtest/gtest.h"
#include "tests/testing/fake_clock.h"

namespace fetchfleet::coordinator {
namespace {

v1::FetchResult Result(int status, v1::ErrorKind error, uint32_t attempts,
                       double latency_ms, uint64_t body_bytes) {
  v1::FetchResult result;
  result.set_status(status);
  result.set_ok(error == v1::ERROR_NONE);
  result.set_error(error);
  result.set_attempts(attempts);
  result.set_latency_ms(latency_ms);
  result.set_body_bytes(body_bytes);
  return result;
}

TEST(JobStatsTest, CountsOutcomesClassesRetriesBytesAndLatency) {
  testing::FakeClock clock;
  Job job("j-1", v1::JobOptions(), JobLimits(), &clock, 0);
  for (int i = 0; i < 10; ++i) job.CountInput();
  job.CloseInput();
  for (int i = 1; i <= 5; ++i)
    job.AddResult(Result(200, v1::ERROR_NONE, 1, i * 10.0, 100));
  job.AddResult(Result(404, v1::ERROR_HTTP_STATUS, 1, 3, 9));
  job.AddResult(Result(500, v1::ERROR_HTTP_STATUS, 3, 7, 21));
  job.AddResult(Result(0, v1::ERROR_TIMEOUT, 2, 1000, 0));
  // No attempt: no latency.
  job.AddResult(Result(0, v1::ERROR_INVALID_REQUEST, 0, 0, 0));
  job.AddResult(Result(0, v1::ERROR_CANCELLED, 0, 0, 0));

  v1::JobStatus status = job.Status();
  EXPECT_EQ(status.state(), v1::JOB_DONE);
  const v1::JobStats& stats = status.stats();
  EXPECT_EQ(stats.outcomes().at("ok"), 5u);
  EXPECT_EQ(stats.outcomes().at("http_status"), 2u);
  EXPECT_EQ(stats.outcomes().at("timeout"), 1u);
  EXPECT_EQ(stats.outcomes().at("invalid_request"), 1u);
  EXPECT_EQ(stats.outcomes().at("cancelled"), 1u);
  EXPECT_EQ(stats.outcomes().size(), 5u);
  EXPECT_EQ(stats.status_classes().at("2xx"), 5u);
  EXPECT_EQ(stats.status_classes().at("4xx"), 1u);
  EXPECT_EQ(stats.status_classes().at("5xx"), 1u);
  EXPECT_EQ(stats.status_classes().at("none"), 3u);
  EXPECT_EQ(stats.retries(), 3u);
  EXPECT_EQ(status.retries(), 3u);
  EXPECT_EQ(stats.body_bytes(), 530u);
  EXPECT_EQ(stats.latency_count(), 8u);
  // Sorted latencies: 3 7 10 20 30 40 50 1000; nearest rank.
  EXPECT_NEAR(stats.latency_p50_ms(), 20, 20 / 64.0);
  EXPECT_NEAR(stats.latency_p90_ms(), 1000, 1000 / 64.0);
  EXPECT_DOUBLE_EQ(stats.latency_max_ms(), 1000);
}

TEST(JobStatsTest, AnEmptyJobHasZeroStats) {
  testing::FakeClock clock;
  Job job("j-2", v1::JobOptions(), JobLimits(), &clock, 0);
  const v1::JobStats stats = job.Status().stats();
  EXPECT_EQ(stats.latency_count(), 0u);
  EXPECT_EQ(stats.latency_max_ms(), 0);
  EXPECT_TRUE(stats.outcomes().empty());
}

}  // namespace
}  // namespace fetchfleet::coordinator
