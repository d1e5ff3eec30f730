// Worker input: what the coordinator takes from a worker's stream, bounded. A
// worker is a peer, not a trusted part of the coordinator: every number it
// sends is clamped to what an honest worker could send, and a result is stamped
// from the lease it completes (index, id, url and the worker's name are the
// coordinator's, never the worker's word), so a confused or hostile worker can
// neither stall a key nor forge another request's result. Thread-safe (pure).
#pragma once

#include <cstdint>
#include <string>

#include "absl/time/time.h"
#include "coordinator/lease_table.h"
#include "proto/fetchfleet.pb.h"

namespace fetchfleet::coordinator {

// The most credit one worker may hold (its --max-inflight is bounded by the
// same number).
inline constexpr uint64_t kMaxWorkerCredit = 65536;
// The longest pause a worker may ask for: its Retry-After is clamped to this.
inline constexpr absl::Duration kMaxKeyPause = absl::Seconds(60);
// The longest open period a breaker event may report (the settings' cap).
inline constexpr uint64_t kMaxBreakerOpenMs = 3600 * 1000;
// A worker's name: printable ASCII, at most this long.
inline constexpr size_t kMaxWorkerNameBytes = 128;

// StampResult makes `result` the result of `lease`'s request as produced by
// `worker_name`: identity from the lease, numbers within bounds, the body
// within `body_cap` (a larger body is cut and marked truncated).
void StampResult(const Lease& lease, const std::string& worker_name,
                 uint64_t body_cap, v1::FetchResult* result);

// SaneWorkerName returns `name` if it is a usable worker name, else "".
std::string SaneWorkerName(const std::string& name);

// BoundBreakerEvent clamps an event's numbers; false when it is unusable (a
// bad key or state), and it is then dropped.
bool BoundBreakerEvent(v1::BreakerEvent* event);

}  // namespace fetchfleet::coordinator
