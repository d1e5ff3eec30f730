#include "common/breaker.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"

namespace fetchfleet {
namespace {

int64_t SecondOf(absl::Time t) {
  return absl::ToInt64Seconds(t - absl::UnixEpoch());
}

// Millis reads a wire milliseconds field: a uint64 past int64 saturates (a cast
// would wrap to a negative period that Validate could not tell from a small
// one).
absl::Duration Millis(uint64_t ms) {
  return absl::Milliseconds(static_cast<int64_t>(
      std::min<uint64_t>(ms, std::numeric_limits<int64_t>::max())));
}

int64_t WindowSeconds(const BreakerConfig& config) {
  return std::max<int64_t>(absl::ToInt64Seconds(config.window), 1);
}

}  // namespace

bool BreakerConfig::operator==(const BreakerConfig& o) const {
  return window == o.window && min_calls == o.min_calls &&
         failure_ratio == o.failure_ratio && open == o.open &&
         max_open == o.max_open && quorum == o.quorum &&
         slow_call == o.slow_call;
}

v1::BreakerConfig BreakerConfig::ToProto() const {
  v1::BreakerConfig proto;
  proto.set_window_s(static_cast<uint32_t>(absl::ToInt64Seconds(window)));
  proto.set_min_calls(static_cast<uint32_t>(min_calls));
  proto.set_failure_ratio(failure_ratio);
  proto.set_open_ms(static_cast<uint64_t>(absl::ToInt64Milliseconds(open)));
  proto.set_max_open_ms(
      static_cast<uint64_t>(absl::ToInt64Milliseconds(max_open)));
  proto.set_quorum(static_cast<uint32_t>(quorum));
  proto.set_slow_call_ms(
      static_cast<uint64_t>(absl::ToInt64Milliseconds(slow_call)));
  return proto;
}

BreakerConfig BreakerConfig::FromProto(const v1::BreakerConfig& proto) {
  BreakerConfig config;
  if (proto.window_s() > 0) config.window = absl::Seconds(proto.window_s());
  if (proto.min_calls() > 0) config.min_calls = proto.min_calls();
  if (proto.failure_ratio() > 0) config.failure_ratio = proto.failure_ratio();
  if (proto.open_ms() > 0) config.open = Millis(proto.open_ms());
  // An unset max_open follows a long open period; one given is kept as given
  // (below open, Validate refuses it).
  if (proto.max_open_ms() > 0) {
    config.max_open = Millis(proto.max_open_ms());
  } else {
    config.max_open = std::max(config.max_open, config.open);
  }
  if (proto.quorum() > 0) config.quorum = proto.quorum();
  config.slow_call = Millis(proto.slow_call_ms());
  return config;
}

absl::Status BreakerConfig::Validate() const {
  if (window < absl::Seconds(1) || window > absl::Seconds(600))
    return absl::InvalidArgumentError("window must be from 1s to 600s");
  if (min_calls < 1 || min_calls > 1000000)
    return absl::InvalidArgumentError("min-calls must be from 1 to 1000000");
  if (!(failure_ratio > 0 && failure_ratio <= 1))
    return absl::InvalidArgumentError(
        "failure-ratio must be above 0 and at most 1 (e.g. 0.5)");
  if (open < absl::Milliseconds(100) || open > absl::Hours(1))
    return absl::InvalidArgumentError("open must be from 100ms to 1h");
  if (max_open < open || max_open > absl::Hours(24))
    return absl::InvalidArgumentError(
        "max-open must be at least open and at most 24h");
  if (quorum < 1 || quorum > 1000)
    return absl::InvalidArgumentError("quorum must be from 1 to 1000");
  if (slow_call < absl::ZeroDuration() || slow_call > absl::Seconds(600))
    return absl::InvalidArgumentError("slow-call must be from 0 (off) to 600s");
  return absl::OkStatus();
}

absl::string_view BreakerStateName(BreakerState state) {
  switch (state) {
    case BreakerState::kClosed:
      return "closed";
    case BreakerState::kOpen:
      return "open";
    case BreakerState::kHalfOpen:
      return "half_open";
  }
  return "closed";
}

v1::BreakerState BreakerStateToProto(BreakerState state) {
  switch (state) {
    case BreakerState::kClosed:
      return v1::BREAKER_CLOSED;
    case BreakerState::kOpen:
      return v1::BREAKER_OPEN;
    case BreakerState::kHalfOpen:
      return v1::BREAKER_HALF_OPEN;
  }
  return v1::BREAKER_CLOSED;
}

CallOutcome ClassifyForBreaker(const AttemptOutcome& outcome,
                               absl::Duration latency,
                               const BreakerConfig& config) {
  switch (outcome.error) {
    case v1::ERROR_CONNECT:
    case v1::ERROR_DNS:
    case v1::ERROR_TIMEOUT:
      return CallOutcome::kFailure;
    case v1::ERROR_NONE:
    case v1::ERROR_HTTP_STATUS:
    case v1::ERROR_TOO_LARGE:  // it answered, just too much
      break;
    default:
      // Refused before the upstream was reached (egress policy, bad URL),
      // TLS trouble, our own cancellations: not the upstream's health.
      return CallOutcome::kIgnored;
  }
  if (outcome.http_status >= 500) return CallOutcome::kFailure;
  if (outcome.http_status == 429) return CallOutcome::kIgnored;
  if (outcome.http_status == 0) return CallOutcome::kIgnored;
  if (config.slow_call > absl::ZeroDuration() && latency > config.slow_call)
    return CallOutcome::kFailure;
  return CallOutcome::kSuccess;
}

// ---------------------------------------------------------------------------------------
// Breaker

void Breaker::Slide(int64_t second) {
  int64_t oldest = second - WindowSeconds(config_) + 1;
  while (!buckets_.empty() && buckets_.front().second < oldest)
    buckets_.pop_front();
  for (auto it = last_failure_second_.begin();
       it != last_failure_second_.end();) {
    if (it->second < oldest) {
      it = last_failure_second_.erase(it);
    } else {
      ++it;
    }
  }
}

Breaker::Window Breaker::Counts(absl::Time now) {
  Slide(SecondOf(now));
  Window window;
  for (const Bucket& bucket : buckets_) {
    window.calls += bucket.successes + bucket.failures;
    window.failures += bucket.failures;
  }
  window.failing_workers = static_cast<int64_t>(last_failure_second_.size());
  return window;
}

bool Breaker::Record(absl::Time now, absl::string_view worker,
                     int64_t successes, int64_t failures,
                     int64_t live_workers) {
  int64_t second = SecondOf(now);
  Slide(second);
  if (buckets_.empty() || buckets_.back().second < second)
    buckets_.push_back(Bucket{second, 0, 0});
  // A clock that went back a second lands in the newest bucket.
  buckets_.back().successes += successes;
  buckets_.back().failures += failures;
  if (failures > 0) {
    auto it = last_failure_second_.find(worker);
    if (it == last_failure_second_.end()) {
      last_failure_second_.emplace(std::string(worker), second);
    } else {
      it->second = second;
    }
  }
  if (state_ != BreakerState::kClosed) return false;
  Window window = Counts(now);
  int64_t quorum = std::max<int64_t>(std::min(config_.quorum, live_workers), 1);
  if (window.calls < config_.min_calls ||
      static_cast<double>(window.failures) <
          config_.failure_ratio * static_cast<double>(window.calls) ||
      window.failing_workers < quorum) {
    return false;
  }
  Open(now, config_.open);
  ++trips_;
  return true;
}

void Breaker::Open(absl::Time now, absl::Duration period) {
  state_ = BreakerState::kOpen;
  period_ = period;
  opened_at_ = now;
  open_until_ = now + period;
  probe_token_ = 0;
}

Breaker::Admission Breaker::Admit(absl::Time now, absl::Duration probe_ttl) {
  Admission admission;
  if (state_ == BreakerState::kClosed) return admission;
  if (state_ == BreakerState::kOpen && now < open_until_) {
    admission.verdict = Verdict::kRefuse;
    admission.retry_at = open_until_;
    return admission;
  }
  // Open period over, or half-open: exactly one probe at a time.
  if (probe_token_ != 0 && now < probe_expires_) {
    admission.verdict = Verdict::kRefuse;
    admission.retry_at = probe_expires_;
    return admission;
  }
  state_ = BreakerState::kHalfOpen;
  probe_token_ = next_token_++;
  probe_expires_ = now + probe_ttl;
  admission.verdict = Verdict::kProbe;
  admission.probe_token = probe_token_;
  return admission;
}

bool Breaker::ProbeDone(absl::Time now, uint64_t token, bool success) {
  if (token == 0 || token != probe_token_) return false;
  probe_token_ = 0;
  if (success) {
    Reset();
    return true;
  }
  Open(now, std::min(period_ * 2, config_.max_open));
  return true;
}

void Breaker::Reset() {
  state_ = BreakerState::kClosed;
  buckets_.clear();
  last_failure_second_.clear();
  probe_token_ = 0;
  period_ = absl::ZeroDuration();
  opened_at_ = absl::InfinitePast();
  open_until_ = absl::InfinitePast();
}

// ---------------------------------------------------------------------------------------
// RetryBudget

RetryBudget::Bucket& RetryBudget::At(absl::Time now) {
  int64_t second = SecondOf(now);
  int64_t oldest =
      second - std::max<int64_t>(absl::ToInt64Seconds(config_.window), 1) + 1;
  while (!buckets_.empty() && buckets_.front().second < oldest)
    buckets_.pop_front();
  if (buckets_.empty() || buckets_.back().second < second)
    buckets_.push_back(Bucket{second, 0, 0});
  return buckets_.back();
}

void RetryBudget::OnFirstAttempt(absl::Time now) { ++At(now).first; }

bool RetryBudget::Idle(absl::Time now) const {
  return buckets_.empty() ||
         buckets_.back().second <
             SecondOf(now) -
                 std::max<int64_t>(absl::ToInt64Seconds(config_.window), 1) + 1;
}

bool RetryBudget::TryRetry(absl::Time now) {
  Bucket& current = At(now);
  int64_t first = 0;
  int64_t retries = 0;
  for (const Bucket& bucket : buckets_) {
    first += bucket.first;
    retries += bucket.retries;
  }
  double allowed = std::max(static_cast<double>(config_.floor),
                            config_.ratio * static_cast<double>(first));
  if (static_cast<double>(retries) + 1 > allowed) return false;
  ++current.retries;
  return true;
}

}  // namespace fetchfleet
