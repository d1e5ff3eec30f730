// Circuit breaker: the state machine of one upstream's (one rate key's)
// breaker, and the retry budget that keeps retries a bounded share of traffic.
//
//   closed --(>= failure_ratio of >= min_calls in the window, from >= quorum
//             distinct workers)--> open --(open period over; one probe
//   claimed)--> half_open --probe ok--> closed
//                         \--probe failed--> open (period doubled, capped)
//
// Outcomes land in per-second buckets of a sliding window. The quorum of
// distinct failing workers keeps one sick worker (its own network broken)
// from tripping the breaker for the fleet.
//
// This class is the in-process breaker (no Redis, and a worker's fallback
// while Redis is unreachable) and the executable specification of the Redis
// scripts in common/breaker_scripts.cc, which implement the same rules
// on Redis' clock. Not thread-safe; time comes in as arguments.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/retry_policy.h"
#include "proto/fetchfleet.pb.h"

namespace fetchfleet {

struct BreakerConfig {
  absl::Duration window = absl::Seconds(10);
  int64_t min_calls = 10;
  double failure_ratio = 0.5;
  absl::Duration open = absl::Seconds(5);
  absl::Duration max_open = absl::Seconds(60);
  // Distinct workers that must have seen failures in the window (capped at
  // the number of live workers).
  int64_t quorum = 2;
  // Calls slower than this count as failures; zero: off.
  absl::Duration slow_call = absl::ZeroDuration();

  bool operator==(const BreakerConfig& o) const;
  bool operator!=(const BreakerConfig& o) const { return !(*this == o); }
  v1::BreakerConfig ToProto() const;
  // FromProto fills unset (zero) fields with the defaults.
  static BreakerConfig FromProto(const v1::BreakerConfig& proto);
  // Validate names the first bad field.
  absl::Status Validate() const;
};

enum class BreakerState { kClosed, kOpen, kHalfOpen };
absl::string_view BreakerStateName(BreakerState state);
v1::BreakerState BreakerStateToProto(BreakerState state);

// CallOutcome: what one attempt means to its upstream's breaker.
enum class CallOutcome {
  kSuccess,  // the upstream answered (2xx-4xx but 429)
  kFailure,  // connect error, DNS, timeout, 5xx, or slower than slow_call
  kIgnored,  // 429 (the limiter's business), refused before connecting
};
CallOutcome ClassifyForBreaker(const AttemptOutcome& outcome,
                               absl::Duration latency,
                               const BreakerConfig& config);

// Breaker: one key's breaker.
class Breaker {
 public:
  explicit Breaker(BreakerConfig config = {}) : config_(config) {}

  const BreakerConfig& config() const { return config_; }
  // set_config applies from the next decision; a period under way keeps its
  // length.
  void set_config(const BreakerConfig& config) { config_ = config; }

  // Record adds outcomes seen by `worker`; it returns true when they tripped
  // the breaker (closed -> open). Outcomes that arrive while open are counted
  // but decide nothing.
  bool Record(absl::Time now, absl::string_view worker, int64_t successes,
              int64_t failures, int64_t live_workers);

  enum class Verdict { kCall, kProbe, kRefuse };
  struct Admission {
    Verdict verdict = Verdict::kCall;
    uint64_t probe_token = 0;  // kProbe: hand back to ProbeDone
    // kRefuse: when asking again may get a different answer.
    absl::Time retry_at = absl::InfinitePast();
  };
  // Admit decides one call. After the open period the first caller becomes
  // the one probe (half-open); a probe that reports nothing within
  // `probe_ttl` is presumed lost and the next caller probes.
  Admission Admit(absl::Time now, absl::Duration probe_ttl);
  // ProbeDone: the probe's result; a stale token is ignored. Returns true when
  // the state changed.
  bool ProbeDone(absl::Time now, uint64_t token, bool success);
  void Reset();

  BreakerState state() const { return state_; }
  absl::Time opened_at() const { return opened_at_; }
  absl::Time open_until() const { return open_until_; }
  absl::Duration period() const { return period_; }
  int64_t trips() const { return trips_; }
  // Window figures as of `now`.
  struct Window {
    int64_t calls = 0;
    int64_t failures = 0;
    int64_t failing_workers = 0;
  };
  Window Counts(absl::Time now);

 private:
  struct Bucket {
    int64_t second = 0;
    int64_t successes = 0;
    int64_t failures = 0;
  };
  void Slide(int64_t second);
  void Open(absl::Time now, absl::Duration period);

  BreakerConfig config_;
  BreakerState state_ = BreakerState::kClosed;
  std::deque<Bucket> buckets_;  // oldest first
  std::map<std::string, int64_t, std::less<>> last_failure_second_;
  absl::Time opened_at_ = absl::InfinitePast();
  absl::Time open_until_ = absl::InfinitePast();
  absl::Duration period_ = absl::ZeroDuration();
  uint64_t probe_token_ = 0;  // 0: no probe out
  absl::Time probe_expires_ = absl::InfinitePast();
  uint64_t next_token_ = 1;
  int64_t trips_ = 0;
};

// RetryBudget: retries may add at most `ratio` of first attempts, plus a
// floor, over a sliding window (Envoy's retry budget, gRPC's retry
// throttling), so a failing upstream gets no retry storm. Not thread-safe.
class RetryBudget {
 public:
  struct Config {
    double ratio = 0.2;
    int64_t floor = 10;
    absl::Duration window = absl::Seconds(10);
  };
  RetryBudget() : RetryBudget(Config{}) {}
  explicit RetryBudget(Config config) : config_(config) {}

  void OnFirstAttempt(absl::Time now);
  // TryRetry spends one retry if the budget allows it.
  bool TryRetry(absl::Time now);
  // Idle: nothing in the window (the budget may be dropped).
  bool Idle(absl::Time now) const;

 private:
  struct Bucket {
    int64_t second = 0;
    int64_t first = 0;
    int64_t retries = 0;
  };
  Bucket& At(absl::Time now);

  Config config_;
  std::deque<Bucket> buckets_;
};

}  // namespace fetchfleet
