// Clock: the one source of time for code whose behaviour depends on it
// (backoff, leases, rate limits), so tests drive time by hand instead of
// sleeping.
//
// Now() is monotonic: it never goes back, and its epoch is arbitrary. Use
// WallNow() only for timestamps shown to people.
#pragma once

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace fetchfleet {

// Clock is an interface so tests can substitute FakeClock. Implementations are
// thread-safe.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual absl::Time Now() const = 0;

  // Clock::Real() returns the process-wide monotonic clock.
  static const Clock* Real();
};

// WallNow returns the wall-clock time, for display only.
inline absl::Time WallNow() { return absl::Now(); }

}  // namespace fetchfleet
