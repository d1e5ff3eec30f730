// The shared breaker's Redis side: Lua scripts that run common/breaker.h's
// rules atomically on Redis' clock, and the key and channel names.
//
// Per rate key K (the hash tag keeps them in one Cluster slot):
//   ff:br:{K}        hash: state, until (ms, Redis time), opened_at, period,
//                    trips, and the window: o:<second> successes,
//                    f:<second> failures, w:<worker> last second it failed
//   ff:br:{K}:probe  the one probe's token (SET NX PX: one probe fleet-wide;
//                    if its worker dies the key expires)
// Every state change is stamped with its Redis time (field v) and published
// on kBreakerChannel as "K\nstate\nms\nv" (ms: what is left of the open
// period); replies carry v too, so a worker keeps the newest of what it hears.
// The script's reply tells the one caller that caused a change.
#pragma once

#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "common/breaker.h"
#include "common/redis_client.h"

namespace fetchfleet {

inline constexpr absl::string_view kBreakerChannel = "ff:br:events";

std::string BreakerStateKey(absl::string_view key);
std::string BreakerProbeKey(absl::string_view key);
// BreakerKeyFromStateKey: the rate key of an ff:br:{K} name, or "" for other
// names (the probe keys).
std::string BreakerKeyFromStateKey(absl::string_view name);
// The settings as script arguments: window_s, min_calls, ratio, open_ms,
// max_open_ms.
std::vector<std::string> BreakerConfigArgs(const BreakerConfig& config);

// record(KEYS: state of each key; ARGV: worker, then per key: rate key,
//        successes, failures, quorum, window_s, min_calls, ratio, open_ms)
//   -> per key {state, remaining_ms, tripped, calls, failures,
//      failing_workers, period_ms, v}. One call carries every key a fetch loop
//      saw in the last 100 ms.
const RedisScript& BreakerRecordScript();
// admit(KEYS: state, probe; ARGV: token, probe_ttl_ms, rate key)
//   -> {"closed"|"open"|"probe"|"half_open", remaining_ms, changed, v}
const RedisScript& BreakerAdmitScript();
// probe_done(KEYS: state, probe; ARGV: token, success, rate key, config...)
//   -> {state, remaining_ms, changed, v}
const RedisScript& BreakerProbeDoneScript();
// reset(KEYS: state, probe; ARGV: rate key) -> 1, or 0 when the key had no
//   state (then nothing is written: a reset creates no breaker)
const RedisScript& BreakerResetScript();
// status(KEYS: state; ARGV: window_s) -> {state, remaining_ms, opened_at_ms
//   (Redis time), period_ms, trips, calls, failures, failing_workers,
//   now_ms}
const RedisScript& BreakerStatusScript();

BreakerState ParseBreakerState(absl::string_view name);

}  // namespace fetchfleet
