// Lease plan: how long a worker may hold a request before the coordinator
// presumes it lost and deals it again. The deadline follows the attempt plan
// actually in force, not a worst case: every attempt's timeout, the backoff
// ceilings of the retries this request may still take (the worker's
// BackoffConfig), the time it may wait at an open breaker (--on-open=wait), the
// slot wait its key's limit allows (the key gate lets about `lead` of R out at
// once, so a request waits at most that long per attempt), plus a slack for
// the network and a loaded worker. A Retry-After the coordinator hears of (a
// key pause) extends the leases of that key (LeaseTable::ExtendKey).
//
// A worker that holds leases past these deadlines without completing any is
// ejected (WorkerHealth). Thread-safe (pure).
#pragma once

#include <cstdint>

#include "absl/time/time.h"
#include "common/retry_policy.h"

namespace fetchfleet::coordinator {

struct LeasePlanOptions {
  BackoffConfig backoff;  // the workers' (they use the defaults)
  absl::Duration slack = absl::Seconds(10);
};

// LeaseDuration is the time from dispatch to a request's deadline.
// `attempts` >= 1; `slot_wait` is the longest one attempt may wait for its
// rate slot (zero for an unlimited key).
absl::Duration LeaseDuration(uint32_t attempts, absl::Duration timeout,
                             absl::Duration breaker_wait,
                             absl::Duration slot_wait,
                             const LeasePlanOptions& options);

}  // namespace fetchfleet::coordinator
