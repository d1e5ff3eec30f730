#include "coordinator/lease_plan.h"

#include <algorithm>

namespace fetchfleet::coordinator {

absl::Duration LeaseDuration(uint32_t attempts, absl::Duration timeout,
                             absl::Duration breaker_wait,
                             absl::Duration slot_wait,
                             const LeasePlanOptions& options) {
  attempts = std::max<uint32_t>(attempts, 1);
  absl::Duration total = (timeout + slot_wait) * static_cast<int64_t>(attempts);
  // The k-th retry waits at most min(cap, base * 2^(k-1)) (full jitter).
  absl::Duration ceiling = options.backoff.base;
  for (uint32_t retry = 1; retry < attempts; ++retry) {
    total += std::min(ceiling, options.backoff.cap);
    if (ceiling < options.backoff.cap) ceiling *= 2;
  }
  return total + breaker_wait + options.slack;
}

}  // namespace fetchfleet::coordinator
