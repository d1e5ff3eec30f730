#include "common/retry_policy.h"

#include "absl/random/random.h"
#include "gtest/gtest.h"

namespace fetchfleet {
namespace {

AttemptOutcome Http(int status) {
  return {status, v1::ERROR_HTTP_STATUS, absl::ZeroDuration()};
}

TEST(RetryPolicyTest, TransientFailuresAreRetryable) {
  EXPECT_TRUE(IsRetryable(Http(500)));
  EXPECT_TRUE(IsRetryable(Http(503)));
  EXPECT_TRUE(IsRetryable(Http(429)));
  EXPECT_TRUE(IsRetryable(Http(408)));
  EXPECT_TRUE(IsRetryable({0, v1::ERROR_CONNECT, absl::ZeroDuration()}));
  EXPECT_TRUE(IsRetryable({0, v1::ERROR_TIMEOUT, absl::ZeroDuration()}));
}

TEST(RetryPolicyTest, PermanentFailuresAreNot) {
  EXPECT_FALSE(IsRetryable(Http(404)));
  EXPECT_FALSE(IsRetryable(Http(400)));
  EXPECT_FALSE(IsRetryable(Http(403)));
  EXPECT_FALSE(IsRetryable({200, v1::ERROR_NONE, absl::ZeroDuration()}));
  for (auto kind :
       {v1::ERROR_DNS, v1::ERROR_TLS, v1::ERROR_BLOCKED, v1::ERROR_TOO_LARGE,
        v1::ERROR_INVALID_REQUEST, v1::ERROR_CANCELLED}) {
    EXPECT_FALSE(IsRetryable({0, kind, absl::ZeroDuration()})) << kind;
  }
}

TEST(RetryPolicyTest, FullJitterStaysWithinTheExponentialCeiling) {
  BackoffConfig config;  // 100ms base, 10s cap
  absl::BitGen gen;
  for (int retry = 1; retry <= 12; ++retry) {
    absl::Duration ceiling =
        std::min(config.base * (1 << (retry - 1)), config.cap);
    absl::Duration lo = absl::InfiniteDuration(), hi = absl::ZeroDuration();
    for (int i = 0; i < 2000; ++i) {
      absl::Duration d = FullJitterDelay(retry, config, gen);
      ASSERT_GE(d, absl::ZeroDuration());
      ASSERT_LE(d, ceiling);
      lo = std::min(lo, d);
      hi = std::max(hi, d);
    }
    // Full jitter spreads over the whole range, not just near the ceiling.
    EXPECT_LT(lo, ceiling * 0.1) << retry;
    EXPECT_GT(hi, ceiling * 0.9) << retry;
  }
}

TEST(RetryPolicyTest, RetryAfterWinsWhenLongerAndIsClamped) {
  BackoffConfig config;
  absl::BitGen gen;
  AttemptOutcome outcome = Http(429);
  outcome.retry_after = absl::Seconds(5);
  for (int i = 0; i < 100; ++i)
    EXPECT_EQ(RetryDelay(1, outcome, config, gen), absl::Seconds(5));
  outcome.retry_after = absl::Hours(2);
  EXPECT_EQ(RetryDelay(1, outcome, config, gen), config.max_retry_after);
}

}  // namespace
}  // namespace fetchfleet
