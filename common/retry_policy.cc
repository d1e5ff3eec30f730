#include "common/retry_policy.h"

#include <algorithm>

#include "absl/random/distributions.h"

namespace fetchfleet {

bool IsRetryable(const AttemptOutcome& outcome) {
  switch (outcome.error) {
    case v1::ERROR_CONNECT:
    case v1::ERROR_TIMEOUT:
      return true;
    case v1::ERROR_HTTP_STATUS:
      return outcome.http_status >= 500 || outcome.http_status == 408 ||
             outcome.http_status == 429;
    default:
      return false;
  }
}

absl::Duration FullJitterDelay(int retry, const BackoffConfig& config,
                               absl::BitGenRef gen) {
  absl::Duration ceiling = config.base;
  for (int i = 1; i < retry && ceiling < config.cap; ++i) ceiling *= 2;
  ceiling = std::min(ceiling, config.cap);
  int64_t max_us = absl::ToInt64Microseconds(ceiling);
  if (max_us <= 0) return absl::ZeroDuration();
  return absl::Microseconds(
      absl::Uniform<int64_t>(absl::IntervalClosedClosed, gen, 0, max_us));
}

absl::Duration RetryDelay(int retry, const AttemptOutcome& outcome,
                          const BackoffConfig& config, absl::BitGenRef gen) {
  absl::Duration delay = FullJitterDelay(retry, config, gen);
  absl::Duration server = std::min(outcome.retry_after, config.max_retry_after);
  return std::max(delay, server);
}

}  // namespace fetchfleet
