// The fleet-wide limiter's Lua scripts. They run inside Redis, atomically and
// on Redis' clock (TIME), so workers' clocks never matter. Each rate key has
// one small hash, `ff:rl:{KEY}` (the hash tag keeps it in one Redis Cluster
// slot): `tat` (the GCRA theoretical arrival time, µs) and `pause` (no start
// before this, µs). The hash expires once both are in the past, when it would
// say nothing a fresh key does not.
#pragma once

#include <string>

#include "absl/strings/string_view.h"
#include "common/redis_client.h"

namespace fetchfleet::worker {

// ReserveScript: KEYS[1] the state hash; ARGV rate (per second), burst, want,
// lookahead (µs). Mirrors GcraReserveBatch (common/rate_limiter.h) step for
// step. Replies {retry_after_us, delay_us...}: the delays of the granted
// starts, and, when the lookahead cut the batch short, how long until the next
// start would fit (0 when all `want` were granted).
const RedisScript& ReserveScript();

// PauseScript: KEYS[1] the state hash; ARGV pause (ms). No start before now +
// pause; replies the pause in force (ms).
const RedisScript& PauseScript();

// RateStateKey is the Redis key of `rate_key`'s state.
std::string RateStateKey(absl::string_view rate_key);

}  // namespace fetchfleet::worker
