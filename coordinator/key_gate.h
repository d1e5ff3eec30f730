// KeyGate: the coordinator's half of the rate limit. Workers take the exact
// start slots from the limiter (Redis, or in-process); the gate decides how
// many of a limited key's requests may be out at workers at once, so requests
// that would only wait for a slot wait here instead, holding no worker
// capacity (no head-of-line blocking: a 1/s key cannot fill a worker while
// other keys have work).
//
//   cap(key) = 0                                while paused (429 Retry-After)
//            = max(kMinOut, ceil(R * lead) + B)  limited: enough to run at R
//            = unbounded                         otherwise
//
// Requests over the cap are parked by their job (Job::Park) and released in
// order as the key's leases end. The gate also counts each limited key's
// starts (attempts, as results come back) for `fetchctl limits list`.
//
// Loop thread only.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/rate_limiter.h"
#include "proto/fetchfleet.pb.h"

namespace fetchfleet::coordinator {

class KeyGate {
 public:
  // `lead`: how much of a limited key's rate may be out at once. Covers a
  // request's latency plus the dispatch round trip, so the key still runs at R.
  explicit KeyGate(const Clock* clock, absl::Duration lead = absl::Seconds(2));

  // SetLimits replaces the limits; it returns the keys whose cap grew.
  std::vector<std::string> SetLimits(std::map<std::string, RateLimit> limits);
  const std::map<std::string, RateLimit>& limits() const { return limits_; }
  // Pause holds `key` back until `until`; true when that moved its pause on.
  bool Pause(const std::string& key, absl::Time until);
  // ExpirePauses forgets pauses that have run out and returns their keys.
  std::vector<std::string> ExpirePauses();

  // Admit counts one more request out for `key`, if its cap has room.
  bool Admit(const std::string& key);
  // Release: a request for `key` came back after `attempts` starts.
  void Release(const std::string& key, uint32_t attempts);
  // Room: how many more of `key` may go out now.
  uint64_t Room(const std::string& key) const;
  bool Limited(const std::string& key) const { return limits_.count(key) > 0; }
  // MaxSlotWait: the longest one request of `key` may wait at a worker for
  // its rate slot: the cap's worth of slots at R (zero when unlimited).
  absl::Duration MaxSlotWait(const std::string& key) const;

  // Parked counts requests the jobs hold back per key (kept by the scheduler).
  void OnParked(const std::string& key, int64_t delta);
  bool HasParked(const std::string& key) const;

  // Table is what workers are told: every limit and pause.
  v1::LimitTable Table(uint32_t live_workers) const;
  // Listing adds each key's recent achieved rate and waiting count.
  v1::LimitTable Listing(uint32_t live_workers) const;

 private:
  struct Starts {  // a sliding 10 s window from two fixed windows
    int64_t window = 0;
    uint64_t current = 0;
    uint64_t previous = 0;
  };
  uint64_t Cap(const std::string& key) const;
  // LimitedCap: the cap of a limited key that is not paused.
  uint64_t LimitedCap(const RateLimit& limit) const;
  double AchievedRate(const std::string& key) const;
  void FillEntry(const std::string& key, v1::KeyLimit* entry) const;

  const Clock* const clock_;
  const absl::Duration lead_;
  std::map<std::string, RateLimit> limits_;
  absl::flat_hash_map<std::string, absl::Time> paused_;
  absl::flat_hash_map<std::string, uint64_t> out_;  // only keys with any out
  absl::flat_hash_map<std::string, int64_t> parked_;
  absl::flat_hash_map<std::string, Starts> starts_;  // limited keys only
};

}  // namespace fetchfleet::coordinator
