#include "common/rate_limiter.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace fetchfleet {

absl::Status CheckRateKey(absl::string_view key) {
  if (key.empty()) return absl::InvalidArgumentError("a rate key is empty");
  if (key.size() > 256) {
    return absl::InvalidArgumentError(absl::StrCat(
        "rate key \"", key.substr(0, 32), "...\" is longer than 256 bytes"));
  }
  for (unsigned char c : key) {
    if (c <= ' ' || c == 0x7f) {
      return absl::InvalidArgumentError(
          absl::StrCat("rate key \"", absl::CHexEscape(key),
                       "\" holds a space or control character"));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckRate(double per_second) {
  // A rate read from "1/d" or computed as n/h may land a rounding error below
  // the bound; that is still one a day.
  if (!std::isfinite(per_second) ||
      !(per_second >= kMinPerSecond * (1 - 1e-9)) ||
      per_second > kMaxPerSecond) {
    return absl::InvalidArgumentError(
        absl::StrCat("a rate must be from 1/d (one a day) to 1000000/s, not ",
                     std::isfinite(per_second) ? FormatRate(per_second)
                                               : absl::StrCat(per_second)));
  }
  return absl::OkStatus();
}

absl::Status CheckRateLimit(const RateLimit& limit) {
  if (absl::Status rate = CheckRate(limit.per_second); !rate.ok()) return rate;
  if (limit.burst < 1 || limit.burst > kMaxBurst) {
    return absl::InvalidArgumentError(absl::StrCat(
        "a burst must be from 1 to ", kMaxBurst, ", not ", limit.burst));
  }
  return absl::OkStatus();
}

absl::StatusOr<double> ParseRate(absl::string_view text) {
  size_t slash = text.find('/');
  double count = 0;
  if (slash == absl::string_view::npos ||
      !absl::SimpleAtod(text.substr(0, slash), &count) || !(count > 0) ||
      !std::isfinite(count)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "rate \"", text, "\" is not like 10/s, 600/m, 0.5/s or 2/d"));
  }
  absl::string_view unit = text.substr(slash + 1);
  double seconds;
  if (unit == "s")
    seconds = 1;
  else if (unit == "m")
    seconds = 60;
  else if (unit == "h")
    seconds = 3600;
  else if (unit == "d")
    seconds = 86400;
  else {
    return absl::InvalidArgumentError(
        absl::StrCat("rate \"", text, "\": the unit must be s, m, h or d"));
  }
  double per_second = count / seconds;
  if (!(per_second >= kMinPerSecond * (1 - 1e-9))) {
    return absl::InvalidArgumentError(
        absl::StrCat("rate \"", text,
                     "\" is below 1/d (one a day, the least a limit may be)"));
  }
  if (per_second > kMaxPerSecond) {
    return absl::InvalidArgumentError(
        absl::StrCat("rate \"", text, "\" is over 1000000/s"));
  }
  return per_second;
}

std::string FormatRate(double per_second) {
  if (per_second >= 1 || per_second <= 0) return absl::StrCat(per_second, "/s");
  if (per_second * 60 >= 1) return absl::StrCat(per_second * 60, "/m");
  if (per_second * 3600 >= 1) return absl::StrCat(per_second * 3600, "/h");
  return absl::StrCat(per_second * 86400, "/d");
}

absl::Duration GcraInterval(double per_second) {
  double half_micros = std::ceil(2e6 / per_second);
  return absl::Nanoseconds(static_cast<int64_t>(half_micros) * 500);
}

absl::Time GcraReserve(const RateLimit& limit, absl::Time now,
                       absl::Time* tat) {
  GcraGrant grant =
      GcraReserveBatch(limit, now, now, 1, absl::InfiniteDuration(), tat);
  return now + grant.delays.front();
}

GcraGrant GcraReserveBatch(const RateLimit& limit, absl::Time now,
                           absl::Time not_before, int64_t want,
                           absl::Duration lookahead, absl::Time* tat) {
  absl::Duration interval = GcraInterval(limit.per_second);
  // Tolerance (B-1)*T: B starts may coincide after an idle period, then they
  // are T apart.
  absl::Duration tolerance = interval * (std::max<int64_t>(limit.burst, 1) - 1);
  absl::Time floor = std::max(now, not_before);
  GcraGrant grant;
  for (int64_t i = 0; i < want; ++i) {
    absl::Time start = std::max(floor, *tat - tolerance);
    if (start - now > lookahead) {
      grant.retry_after = start - now - lookahead;
      break;
    }
    *tat = std::max(*tat, start) + interval;
    grant.delays.push_back(start - now);
  }
  return grant;
}

// ---------------------------------------------------------------------------
// LimitTable

void LimitTable::Replace(const v1::LimitTable& table) {
  absl::Time now = clock_->Now();
  std::lock_guard<std::mutex> lock(mu_);
  limits_.clear();
  for (const v1::KeyLimit& entry : table.limits()) {
    if (entry.per_second() > 0) {
      limits_[entry.key()] =
          RateLimit{entry.per_second(), std::max<int64_t>(entry.burst(), 1)};
    }
    if (entry.paused_ms() > 0) {
      absl::Time until = now + absl::Milliseconds(entry.paused_ms());
      absl::Time& paused = paused_[entry.key()];
      paused = std::max(paused, until);
    }
  }
  live_workers_ = std::max<uint32_t>(table.live_workers(), 1);
  // Pauses that have run out are forgotten.
  for (auto it = paused_.begin(); it != paused_.end();) {
    if (it->second <= now)
      paused_.erase(it++);
    else
      ++it;
  }
}

void LimitTable::SetLimit(const std::string& key, RateLimit limit) {
  std::lock_guard<std::mutex> lock(mu_);
  limits_[key] = limit;
}

void LimitTable::Pause(const std::string& key, absl::Duration duration) {
  absl::Time until = clock_->Now() + duration;
  std::lock_guard<std::mutex> lock(mu_);
  absl::Time& paused = paused_[key];
  paused = std::max(paused, until);
  if (on_pause_) on_pause_(key, duration);
}

void LimitTable::set_pause_listener(PauseListener listener) {
  std::lock_guard<std::mutex> lock(mu_);
  on_pause_ = std::move(listener);
}

KeyPolicy LimitTable::Lookup(absl::string_view key) const {
  KeyPolicy policy;
  std::lock_guard<std::mutex> lock(mu_);
  if (auto it = limits_.find(key); it != limits_.end()) {
    policy.limit = it->second;
    policy.limit->per_second *= 1 - headroom_;
  }
  if (!paused_.empty()) {
    if (auto it = paused_.find(key); it != paused_.end())
      policy.paused_until = it->second;
  }
  return policy;
}

void LimitTable::set_headroom(double headroom) {
  std::lock_guard<std::mutex> lock(mu_);
  headroom_ = std::clamp(headroom, 0.0, 0.5);
}

uint32_t LimitTable::live_workers() const {
  std::lock_guard<std::mutex> lock(mu_);
  return live_workers_;
}

// ---------------------------------------------------------------------------
// LocalRateLimiter

absl::Duration LocalRateLimiter::DelayFor(absl::string_view key) {
  KeyPolicy policy = table_->Lookup(key);
  absl::Time now = clock_->Now();
  if (!policy.limit)
    return std::max(policy.paused_until - now, absl::ZeroDuration());
  double share = table_->live_workers();
  RateLimit mine{
      policy.limit->per_second / share,
      std::max<int64_t>(1, static_cast<int64_t>(policy.limit->burst / share))};
  std::lock_guard<std::mutex> lock(mu_);
  auto [it, inserted] = tat_.try_emplace(std::string(key), now);
  GcraGrant grant = GcraReserveBatch(mine, now, policy.paused_until, 1,
                                     absl::InfiniteDuration(), &it->second);
  return grant.delays.front();
}

void LocalRateLimiter::Reserve(
    absl::string_view key,
    absl::AnyInvocable<void(absl::Duration delay)> granted) {
  // Outside the lock: `granted` may start a transfer, or reserve again.
  granted(DelayFor(key));
}

void LocalRateLimiter::Pause(absl::string_view key,
                             absl::Duration retry_after) {
  table_->Pause(std::string(key), retry_after);
}

}  // namespace fetchfleet
