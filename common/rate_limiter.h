// Rate limiting by GCRA (the generic cell rate algorithm): per rate key, one
// number, the theoretical arrival time (TAT), gives exact spacing. For a rate R
// and burst B (B >= 1) no window of length W ever sees more than R*W + B
// starts.
//
// The limiter reserves rather than refuses: each request is given the moment it
// may start (now, or a future slot), so a waiting request costs a timer, not a
// retry loop. GcraReserveBatch is the arithmetic both limiters share: the
// in-process LocalRateLimiter runs it under a mutex, and the fleet-wide limiter
// (worker/redis_rate_limiter) runs the same steps as a Lua script inside Redis,
// on Redis' clock.
//
// Which keys are limited, at what rate, and which are paused (an upstream's
// 429/503 with Retry-After) is the LimitTable: the coordinator owns it and
// pushes it to every worker.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "proto/fetchfleet.pb.h"

namespace fetchfleet {

struct RateLimit {
  double per_second = 0;  // R
  int64_t burst = 1;      // B: how many may start at once after an idle period

  bool operator==(const RateLimit& other) const {
    return per_second == other.per_second && burst == other.burst;
  }
};

// CheckRateKey: a rate key is 1 to 256 bytes, without spaces or control
// characters (it names a Redis key and a column in `fetchctl limits list`).
absl::Status CheckRateKey(absl::string_view key);

// The bounds of a limit. Below one a day a key would as good as stall (and
// 1e-300/s overflows the GCRA's spacing); above 1000000/s a limit means
// nothing a fleet can reach.
inline constexpr double kMinPerSecond = 1.0 / 86400;
inline constexpr double kMaxPerSecond = 1e6;
inline constexpr int64_t kMaxBurst = 1000000;

// CheckRate: a rate from kMinPerSecond (1/d) to kMaxPerSecond; the error
// names the bound.
absl::Status CheckRate(double per_second);
// CheckRateLimit: CheckRate, and a burst from 1 to kMaxBurst. The coordinator
// checks every limit it is given with it; fetchctl checks its flags with it.
absl::Status CheckRateLimit(const RateLimit& limit);

// ParseRate reads "10/s", "600/m", "0.5/s", "3600/h", "2/d" into requests per
// second, within CheckRate's bounds.
absl::StatusOr<double> ParseRate(absl::string_view text);
// FormatRate prints requests per second the way ParseRate reads them.
std::string FormatRate(double per_second);

// GcraInterval is the spacing T = 1/R, rounded up to a multiple of 0.5 µs (the
// resolution the Redis script keeps exactly), so rounding never speeds up.
absl::Duration GcraInterval(double per_second);

// GcraReserve reserves one start for a key whose state is `*tat` under `limit`
// at `now`; it advances `*tat` and returns the start time (>= now).
absl::Time GcraReserve(const RateLimit& limit, absl::Time now, absl::Time* tat);

struct GcraGrant {
  // Delays from now of the granted starts, in order.
  std::vector<absl::Duration> delays;
  // When the lookahead cut the batch short: how long until the next start
  // falls within it (ask again then). Zero when all `want` were granted.
  absl::Duration retry_after = absl::ZeroDuration();
};

// GcraReserveBatch reserves up to `want` consecutive starts, none before
// `not_before` (a pause) and none further than `lookahead` from now. Every
// start is a GCRA slot of its own, so a batch never grants more than the bound
// allows; it only moves the round trip off the per-request path.
GcraGrant GcraReserveBatch(const RateLimit& limit, absl::Time now,
                           absl::Time not_before, int64_t want,
                           absl::Duration lookahead, absl::Time* tat);

// KeyPolicy is what the fleet says about one rate key now.
struct KeyPolicy {
  std::optional<RateLimit> limit;  // none: unlimited
  absl::Time paused_until = absl::InfinitePast();
};

// LimitTable: the worker's copy of the fleet's limits and pauses, as the
// coordinator last pushed it, plus pauses this worker saw itself.
// Thread-safe: a worker's fetch loops read it.
class LimitTable {
 public:
  // on_pause (any thread) hears each pause recorded through Pause, to report
  // it to the coordinator.
  using PauseListener =
      absl::AnyInvocable<void(const std::string& key, absl::Duration)>;

  explicit LimitTable(const Clock* clock) : clock_(clock) {}

  // Headroom: this worker spends (1 - headroom) of each key's rate. An
  // upstream counts arrivals, which network and scheduling jitter move by a
  // millisecond or two; at exactly R an upstream enforcing R over a sliding
  // window would reject some. The default 2% keeps 20 ms of slack per
  // second.
  void set_headroom(double headroom);

  // Replace installs a table pushed by the coordinator.
  void Replace(const v1::LimitTable& table);
  void SetLimit(const std::string& key, RateLimit limit);
  // Pause holds `key` back for `duration`, and tells the listener.
  void Pause(const std::string& key, absl::Duration duration);
  void set_pause_listener(PauseListener listener);

  KeyPolicy Lookup(absl::string_view key) const;
  uint32_t live_workers() const;

 private:
  const Clock* const clock_;
  // std::mutex, not absl::Mutex: Debian's Abseil is not built with TSan, which
  // would then not see the lock.
  mutable std::mutex mu_;
  absl::flat_hash_map<std::string, RateLimit> limits_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, absl::Time> paused_ ABSL_GUARDED_BY(mu_);
  uint32_t live_workers_ ABSL_GUARDED_BY(mu_) = 1;
  double headroom_ ABSL_GUARDED_BY(mu_) = 0;
  PauseListener on_pause_ ABSL_GUARDED_BY(mu_);
};

// A request starts at most this long after its slot. A fetch loop that
// stalled (descheduled, or busy) past several slots would otherwise start them
// together, a burst the limit never granted; a slot missed by more than this
// is given up and the request asks for a new one. So an upstream sees at most
// R * (W + kMaxSlotLateness) + B starts in any window W, and the workers'
// default 2% headroom covers that for windows of a second and more.
inline constexpr absl::Duration kMaxSlotLateness = absl::Milliseconds(20);

// RateLimiter hands out start times per rate key. Implementations say their
// threading.
class RateLimiter {
 public:
  virtual ~RateLimiter() = default;
  // Reserve asks for one start slot for `key`; `granted` runs (on the caller's
  // loop) with the delay until the slot, zero for "start now". Unlimited keys
  // are granted at once unless paused.
  virtual void Reserve(
      absl::string_view key,
      absl::AnyInvocable<void(absl::Duration delay)> granted) = 0;
  // Pause: an upstream answered 429/503 with Retry-After; hold `key` back for
  // the whole fleet.
  virtual void Pause(absl::string_view key, absl::Duration retry_after) = 0;

  // set_hold: `held(key)` true means the key's circuit breaker is open. A
  // limiter that queues requests for slots then hands them back with an
  // infinite delay instead of spending slots on calls that will not be made.
  void set_hold(std::function<bool(absl::string_view key)> held) {
    held_ = std::move(held);
  }

 protected:
  bool Held(absl::string_view key) const { return held_ && held_(key); }

 private:
  std::function<bool(absl::string_view)> held_;
};

// LocalRateLimiter keeps GCRA state in this process, for the limits in a
// LimitTable. Each worker takes R / live_workers (and B / live_workers, at
// least 1): exact for one worker (`fetchctl run`), a fair share for the
// --redis-failure=local fallback. Thread-safe: a worker's fetch loops share
// one.
class LocalRateLimiter final : public RateLimiter {
 public:
  LocalRateLimiter(const Clock* clock, LimitTable* table)
      : clock_(clock), table_(table) {}

  // Reserve runs `granted` on the calling thread, outside the lock.
  void Reserve(absl::string_view key,
               absl::AnyInvocable<void(absl::Duration delay)> granted) override;
  void Pause(absl::string_view key, absl::Duration retry_after) override;
  // DelayFor reserves one slot and returns its delay from now.
  absl::Duration DelayFor(absl::string_view key);

 private:
  const Clock* const clock_;
  LimitTable* const table_;
  std::mutex mu_;  // std::mutex: see LimitTable::mu_
  absl::flat_hash_map<std::string, absl::Time> tat_ ABSL_GUARDED_BY(mu_);
};

}  // namespace fetchfleet
