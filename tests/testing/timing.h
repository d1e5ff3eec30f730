// Timing helpers shared by tests that watch real clocks.
#pragma once

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace fetchfleet::testing {

// ThreadSanitizer slows every binary 5-15x, test servers with them, so
// arrival times say more about the sanitizer than the code: under TSan the
// flows, the exactly-once checks and the race detection run; timing bounds
// do not (they run in the plain and ASan builds).
#if defined(__SANITIZE_THREAD__)
inline constexpr bool kTimed = false;
#else
inline constexpr bool kTimed = true;
#endif

// WaitFor polls `condition` (any thread) until it holds or `timeout` passes,
// and returns it.
template <typename F>
bool WaitFor(F condition, absl::Duration timeout = absl::Seconds(10),
             absl::Duration poll = absl::Milliseconds(5)) {
  absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    if (condition()) return true;
    absl::SleepFor(poll);
  }
  return condition();
}

}  // namespace fetchfleet::testing
