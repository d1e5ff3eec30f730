#include "coordinator/user_quota.h"

#include "absl/strings/str_cat.h"

namespace fetchfleet::coordinator {

absl::Status UserQuota::CheckNewJob(absl::string_view owner,
                                    size_t running) const {
  if (limits_.jobs > 0 && static_cast<int64_t>(running) >= limits_.jobs) {
    return absl::ResourceExhaustedError(absl::StrCat(
        owner, " already has ", running, " jobs running (--user-max-jobs ",
        limits_.jobs, "): wait for one to end or cancel one"));
  }
  return absl::OkStatus();
}

uint64_t UserQuota::LastHour(Usage& usage, int64_t minute) {
  uint64_t sum = 0;
  for (int i = 0; i < kBuckets; ++i) {
    if (usage.minute_of[i] > minute - kBuckets) {
      sum += usage.per_minute[i];
    } else {
      usage.per_minute[i] = 0;  // older than an hour
    }
  }
  return sum;
}

absl::Status UserQuota::ChargeRequests(absl::string_view owner, uint64_t n,
                                       absl::Time now) {
  if (limits_.requests_per_hour <= 0 || n == 0) return absl::OkStatus();
  Usage& usage = usage_[owner];
  int64_t minute = absl::ToUnixSeconds(now) / 60;
  uint64_t used = LastHour(usage, minute);
  if (used + n > static_cast<uint64_t>(limits_.requests_per_hour)) {
    return absl::ResourceExhaustedError(absl::StrCat(
        owner, " has submitted ", used, " requests in the last hour; ", n,
        " more would pass --user-max-requests-per-hour ",
        limits_.requests_per_hour, "; the job is cancelled"));
  }
  int bucket = static_cast<int>(minute % kBuckets);
  if (usage.minute_of[bucket] != minute) {
    usage.minute_of[bucket] = minute;
    usage.per_minute[bucket] = 0;
  }
  usage.per_minute[bucket] += n;
  return absl::OkStatus();
}

absl::Status UserQuota::StartAggregate(absl::string_view owner) {
  Usage& usage = usage_[owner];
  if (limits_.aggregates > 0 && usage.aggregates >= limits_.aggregates) {
    return absl::ResourceExhaustedError(
        absl::StrCat(owner, " already has ", usage.aggregates,
                     " Aggregate calls running (--user-max-aggregates ",
                     limits_.aggregates, ")"));
  }
  ++usage.aggregates;
  return absl::OkStatus();
}

void UserQuota::EndAggregate(absl::string_view owner) {
  auto it = usage_.find(owner);
  if (it != usage_.end() && it->second.aggregates > 0) --it->second.aggregates;
}

}  // namespace fetchfleet::coordinator
