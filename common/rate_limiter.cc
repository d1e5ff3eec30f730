#include "common/rate_limiter.h"

#include <algorithm>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace fetchfleet {

absl::StatusOr<double> ParseRate(absl::string_view text) {
  size_t slash = text.find('/');
  double count = 0;
  if (slash == absl::string_view::npos ||
      !absl::SimpleAtod(text.substr(0, slash), &count) || !(count > 0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("rate \"", text, "\" is not like 10/s, 600/m or 0.5/s"));
  }
  absl::string_view unit = text.substr(slash + 1);
  double seconds;
  if (unit == "s")
    seconds = 1;
  else if (unit == "m")
    seconds = 60;
  else if (unit == "h")
    seconds = 3600;
  else {
    return absl::InvalidArgumentError(
        absl::StrCat("rate \"", text, "\": the unit must be s, m or h"));
  }
  return count / seconds;
}

absl::Time GcraReserve(const RateLimit& limit, absl::Time now,
                       absl::Time* tat) {
  absl::Duration interval = absl::Seconds(1.0 / limit.per_second);
  // Tolerance (B-1)*T: B starts may coincide after an idle period, then they
  // are T apart.
  absl::Duration tolerance =
      interval * static_cast<double>(std::max<int64_t>(limit.burst, 1) - 1);
  absl::Time start = std::max(now, *tat - tolerance);
  *tat = std::max(*tat, start) + interval;
  return start;
}

void LocalRateLimiter::SetLimit(const std::string& key, RateLimit limit) {
  absl::MutexLock lock(&mu_);
  limits_[key] = limit;
}

void LocalRateLimiter::DeleteLimit(const std::string& key) {
  absl::MutexLock lock(&mu_);
  limits_.erase(key);
  tat_.erase(key);
}

std::map<std::string, RateLimit> LocalRateLimiter::limits() const {
  absl::MutexLock lock(&mu_);
  return limits_;
}

void LocalRateLimiter::Reserve(
    absl::string_view key,
    absl::AnyInvocable<void(absl::Duration delay)> granted) {
  absl::Duration delay = absl::ZeroDuration();
  {
    absl::MutexLock lock(&mu_);
    auto it = limits_.find(std::string(key));
    if (it != limits_.end()) {
      absl::Time now = clock_->Now();
      auto [tat_it, inserted] = tat_.try_emplace(std::string(key), now);
      delay = GcraReserve(it->second, now, &tat_it->second) - now;
    }
  }
  // Outside the lock: `granted` may start a transfer, or reserve again.
  granted(delay);
}

}  // namespace fetchfleet
