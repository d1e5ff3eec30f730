// RedisRateLimiter: one fetch loop's view of the fleet-wide rate limit. The
// GCRA state lives in Redis (worker/redis_gcra.h); this class batches the
// loop's demand so the round trip is off the per-request path:
//
//   Reserve(key) -> waiters[key] --one EVALSHA in flight per key-->
//     Redis grants k starts (each its own GCRA slot, none further than the
//     lookahead) -> the first k waiters get their delays. The rest ask again
//     at once if Redis had more to give, else when `refill` worth of new
//     slots has come within the lookahead.
//
// Reserves made in one loop turn go out as one call, and calls for a key are
// spaced so each carries about 20 of this worker's share of the slots (at most
// 5 ms apart): at 50,000/s that is one round trip per 20 requests or better,
// whatever the number of workers. A backlogged key asks about once per
// `refill`. At low rates a call grants one slot; exactness comes from Redis,
// the spacing only delays the asking.
// Nothing is ever over-granted: a slot a worker does not use (its request was
// cancelled, the worker died) is only lost, never given twice.
//
// Unlimited keys never touch Redis: the coordinator's LimitTable says which
// keys are limited, and paused keys wait out their pause locally.
//
// While Redis is unreachable: kClosed holds limited keys' requests until it is
// back (unlimited keys go on); kLocal serves them from the LocalRateLimiter,
// which gives each worker R / live workers.
//
// Loop thread only.
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "common/event_loop.h"
#include "common/rate_limiter.h"
#include "common/redis_client.h"

namespace fetchfleet::worker {

enum class RedisFailureMode { kClosed, kLocal };

class RedisRateLimiter final : public RateLimiter {
 public:
  struct Options {
    RedisClient::Options redis;
    RedisFailureMode failure = RedisFailureMode::kClosed;
    // How far ahead a start may be granted. Long enough to cover a round
    // trip, so slots are claimed before they are due; short, so a worker
    // that dies takes few slots with it.
    absl::Duration lookahead = absl::Milliseconds(100);
    // A backlogged key asks again once this much more of the lookahead has
    // opened up: a batch of refill * R slots per round trip. Below the
    // lookahead, so slots are claimed before they are due.
    absl::Duration refill = absl::Milliseconds(20);
    int64_t max_batch = 4096;
    // Calls for one key are spaced so each carries about kSlotsPerCall of
    // this worker's slots, but never further apart than this.
    absl::Duration max_call_spacing = absl::Milliseconds(5);
  };

  RedisRateLimiter(EventLoop* loop, LimitTable* table,
                   LocalRateLimiter* fallback, Options options);
  ~RedisRateLimiter() override;

  void Start();
  void Reserve(absl::string_view key,
               absl::AnyInvocable<void(absl::Duration delay)> granted) override;
  void Pause(absl::string_view key, absl::Duration retry_after) override;

  // For tests and benchmarks.
  uint64_t redis_calls() const { return redis_calls_; }
  uint64_t granted() const { return granted_; }
  // Replies whose slots were given up as stale (see OnReserved).
  uint64_t stale_replies() const { return stale_replies_; }
  bool redis_connected() const { return redis_.connected(); }

 private:
  using Granted = absl::AnyInvocable<void(absl::Duration)>;
  struct KeyState {
    RateLimit limit;
    std::deque<Granted> waiters;
    bool call_in_flight = false;
    EventLoop::TimerId retry_timer = 0;
    absl::Time next_call_at = absl::InfinitePast();
    absl::Time sent_at;  // of the call in flight
  };
  static constexpr int64_t kSlotsPerCall = 20;

  absl::Duration CallSpacing(const RateLimit& limit) const;
  // RecordRoundTrip adds a reserve call's round trip and returns the fastest
  // of the last 32: the baseline a stalled reply is judged against (a
  // windowed minimum, so a Redis that is simply far away is not "stale").
  absl::Duration RecordRoundTrip(absl::Duration rtt);

  void Pump(const std::string& key);
  void OnReserved(const std::string& key, absl::StatusOr<RedisReply> reply);
  void ServeLocally(const std::string& key, KeyState& state);
  void RetryLater(const std::string& key, KeyState& state,
                  absl::Duration delay);
  void MaybeForget(const std::string& key);
  void OnRedisState(bool up);

  EventLoop* const loop_;
  LimitTable* const table_;
  LocalRateLimiter* const fallback_;
  const Options options_;
  RedisClient redis_;
  absl::flat_hash_map<std::string, KeyState> keys_;
  uint64_t redis_calls_ = 0;
  uint64_t granted_ = 0;
  uint64_t stale_replies_ = 0;
  std::array<absl::Duration, 32> recent_rtts_;
  size_t rtt_count_ = 0;
};

}  // namespace fetchfleet::worker
