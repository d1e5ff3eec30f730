// Rate limiting by GCRA (the generic cell rate algorithm): per rate key, one
// number, the theoretical arrival time (TAT), gives exact spacing. For a rate R
// and burst B (B >= 1) no window of length W ever sees more than R*W + B
// starts.
//
// The limiter reserves rather than refuses: each request is given the moment it
// may start (now, or a future slot), so a waiting request costs a timer, not a
// retry loop. The in-process LocalRateLimiter serves one worker (`fetchctl
// run`, no Redis); the fleet-wide limiter keeps the same state in Redis behind
// the same interface.
#pragma once

#include <map>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"

namespace fetchfleet {

struct RateLimit {
  double per_second = 0;  // R
  int64_t burst = 1;      // B: how many may start at once after an idle period
};

// ParseRate reads "10/s", "600/m", "0.5/s", "3600/h" into requests per second.
absl::StatusOr<double> ParseRate(absl::string_view text);

// GcraReserve reserves one start for a key whose state is `*tat` under `limit`
// at `now`; it advances `*tat` and returns the start time (>= now).
absl::Time GcraReserve(const RateLimit& limit, absl::Time now, absl::Time* tat);

// RateLimiter hands out start times per rate key. Implementations say their
// threading.
class RateLimiter {
 public:
  virtual ~RateLimiter() = default;
  // Reserve asks for one start slot for `key`; `granted` runs (on the caller's
  // loop) with the delay until the slot, zero for "start now". Keys without a
  // limit are granted at once.
  virtual void Reserve(
      absl::string_view key,
      absl::AnyInvocable<void(absl::Duration delay)> granted) = 0;
};

// LocalRateLimiter keeps GCRA state in this process. Thread-safe: a worker's
// fetch loops share one.
class LocalRateLimiter final : public RateLimiter {
 public:
  explicit LocalRateLimiter(const Clock* clock) : clock_(clock) {}

  void SetLimit(const std::string& key, RateLimit limit);
  void DeleteLimit(const std::string& key);
  std::map<std::string, RateLimit> limits() const;

  // Reserve runs `granted` on the calling thread, outside the lock.
  void Reserve(absl::string_view key,
               absl::AnyInvocable<void(absl::Duration delay)> granted) override;

 private:
  const Clock* clock_;
  mutable absl::Mutex mu_;
  std::map<std::string, RateLimit> limits_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, absl::Time> tat_ ABSL_GUARDED_BY(mu_);
};

}  // namespace fetchfleet
