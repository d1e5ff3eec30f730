// UserQuota: the abuse limits per identity (a token's or certificate's name),
// so that one client cannot take the coordinator from everyone else: jobs at
// once, requests accepted per sliding hour, Aggregate calls at once. Over a
// limit, the call ends with RESOURCE_EXHAUSTED naming the limit and its flag.
//
// Loop thread only.
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace fetchfleet::coordinator {

struct UserLimits {
  int64_t jobs = 64;                        // unfinished jobs at once
  int64_t requests_per_hour = 100'000'000;  // input lines, sliding hour
  int64_t aggregates = 256;                 // Aggregate calls at once
  int64_t in_flight = 0;  // requests of its batch jobs leased at once (0: none)
};

// InFlightBudget: the requests one identity's batch jobs have leased to
// workers, shared by those jobs (Job::CanDispatch asks it), so that one user's
// many jobs cannot take every worker's credit. Not a refusal: a job at the cap
// waits, as at its own --concurrency.
struct InFlightBudget {
  uint64_t in_flight = 0;
  uint64_t max = 0;  // 0: no cap
  bool full() const { return max > 0 && in_flight >= max; }
};

class UserQuota {
 public:
  explicit UserQuota(UserLimits limits) : limits_(limits) {}

  // CheckNewJob: `owner` may start one more job, having `running` now.
  absl::Status CheckNewJob(absl::string_view owner, size_t running) const;
  // ChargeRequests counts `n` input lines of `owner`'s at `now`, or refuses
  // them (and counts nothing) when they would pass the hourly limit.
  absl::Status ChargeRequests(absl::string_view owner, uint64_t n,
                              absl::Time now);
  // StartAggregate / EndAggregate bracket one Aggregate call.
  absl::Status StartAggregate(absl::string_view owner);
  void EndAggregate(absl::string_view owner);

 private:
  // An hour in one-minute buckets: the window slides by the minute.
  static constexpr int kBuckets = 60;
  struct Usage {
    std::array<uint64_t, kBuckets> per_minute{};
    std::array<int64_t, kBuckets> minute_of{};  // which minute a bucket holds
    int64_t aggregates = 0;
  };
  static uint64_t LastHour(Usage& usage, int64_t minute);

  const UserLimits limits_;
  absl::flat_hash_map<std::string, Usage> usage_;
};

}  // namespace fetchfleet::coordinator
