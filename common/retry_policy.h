// Retry policy: which attempt outcomes are worth another attempt, and how long
// to wait.
//
// Transient failures (connect errors, timeouts, 5xx, 408, 429) are retried with
// exponential backoff and full jitter (AWS "Exponential Backoff and Jitter"); a
// server's Retry-After overrides the computed delay when it is longer. Other
// 4xx, DNS, TLS, egress refusals and size caps are final. Pure functions:
// randomness comes in as a generator, so tests are exact.
#pragma once

#include "absl/random/bit_gen_ref.h"
#include "absl/time/time.h"
#include "proto/fetchfleet.pb.h"

namespace fetchfleet {

// AttemptOutcome is what one attempt of a request came to.
struct AttemptOutcome {
  int http_status = 0;  // 0 when no response came
  v1::ErrorKind error = v1::ERROR_NONE;
  // The server's Retry-After, zero when it sent none.
  absl::Duration retry_after = absl::ZeroDuration();
};

struct BackoffConfig {
  absl::Duration base = absl::Milliseconds(100);
  absl::Duration cap = absl::Seconds(10);
  // A Retry-After longer than this is clamped: a server may not park a request
  // for an hour.
  absl::Duration max_retry_after = absl::Seconds(60);
};

// IsRetryable reports whether `outcome` is a transient failure.
bool IsRetryable(const AttemptOutcome& outcome);

// FullJitterDelay returns a delay drawn uniformly from [0, min(cap, base *
// 2^(retry-1))] for the `retry`-th retry (1-based).
absl::Duration FullJitterDelay(int retry, const BackoffConfig& config,
                               absl::BitGenRef gen);

// RetryDelay returns the wait before the `retry`-th retry: the jittered
// backoff, or the server's Retry-After (clamped to max_retry_after) when that
// is longer.
absl::Duration RetryDelay(int retry, const AttemptOutcome& outcome,
                          const BackoffConfig& config, absl::BitGenRef gen);

}  // namespace fetchfleet
