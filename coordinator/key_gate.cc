#include "coordinator/key_gate.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace fetchfleet::coordinator {
namespace {

constexpr uint64_t kMinOut = 8;
constexpr uint64_t kUnbounded = std::numeric_limits<uint64_t>::max();
constexpr absl::Duration kRateWindow = absl::Seconds(10);

}  // namespace

KeyGate::KeyGate(const Clock* clock, absl::Duration lead)
    : clock_(clock), lead_(lead) {}

std::vector<std::string> KeyGate::SetLimits(
    std::map<std::string, RateLimit> limits) {
  std::vector<std::string> grew;
  for (const auto& [key, old] : limits_) {
    auto it = limits.find(key);
    if (it == limits.end() || it->second.per_second > old.per_second ||
        it->second.burst > old.burst)
      grew.push_back(key);
  }
  limits_ = std::move(limits);
  for (auto it = starts_.begin(); it != starts_.end();) {
    if (limits_.count(it->first) == 0)
      starts_.erase(it++);
    else
      ++it;
  }
  return grew;
}

bool KeyGate::Pause(const std::string& key, absl::Time until) {
  absl::Time& paused = paused_[key];
  // Workers report the same pause many times; only a real extension counts.
  if (until <= paused + absl::Milliseconds(100)) return false;
  paused = until;
  return true;
}

std::vector<std::string> KeyGate::ExpirePauses() {
  absl::Time now = clock_->Now();
  std::vector<std::string> expired;
  for (auto it = paused_.begin(); it != paused_.end();) {
    if (it->second <= now) {
      expired.push_back(it->first);
      paused_.erase(it++);
    } else {
      ++it;
    }
  }
  return expired;
}

uint64_t KeyGate::LimitedCap(const RateLimit& limit) const {
  double wanted = std::ceil(limit.per_second * absl::ToDoubleSeconds(lead_)) +
                  static_cast<double>(limit.burst);
  return std::max<uint64_t>(kMinOut,
                            static_cast<uint64_t>(std::min(wanted, 1e12)));
}

uint64_t KeyGate::Cap(const std::string& key) const {
  if (!paused_.empty()) {
    auto it = paused_.find(key);
    if (it != paused_.end() && it->second > clock_->Now()) return 0;
  }
  auto it = limits_.find(key);
  if (it == limits_.end()) return kUnbounded;
  return LimitedCap(it->second);
}

absl::Duration KeyGate::MaxSlotWait(const std::string& key) const {
  auto it = limits_.find(key);
  if (it == limits_.end() || it->second.per_second <= 0)
    return absl::ZeroDuration();
  // The cap's worth of slots at R: the last request out waits that long.
  double slots = static_cast<double>(LimitedCap(it->second));
  return absl::Seconds(std::min(slots / it->second.per_second, 86400.0));
}

bool KeyGate::Admit(const std::string& key) {
  auto it = out_.find(key);
  uint64_t out = it == out_.end() ? 0 : it->second;
  if (out >= Cap(key)) return false;
  if (it == out_.end())
    out_.emplace(key, 1);
  else
    ++it->second;
  return true;
}

void KeyGate::Release(const std::string& key, uint32_t attempts) {
  auto it = out_.find(key);
  if (it != out_.end() && --it->second == 0) out_.erase(it);
  if (attempts == 0 || limits_.count(key) == 0) return;
  int64_t window = absl::ToInt64Seconds(clock_->Now() - absl::UnixEpoch()) /
                   absl::ToInt64Seconds(kRateWindow);
  Starts& starts = starts_[key];
  if (starts.window != window) {
    starts.previous = starts.window == window - 1 ? starts.current : 0;
    starts.current = 0;
    starts.window = window;
  }
  starts.current += attempts;
}

uint64_t KeyGate::Room(const std::string& key) const {
  uint64_t cap = Cap(key);
  auto it = out_.find(key);
  uint64_t out = it == out_.end() ? 0 : it->second;
  return out >= cap ? 0 : cap - out;
}

void KeyGate::OnParked(const std::string& key, int64_t delta) {
  int64_t& parked = parked_[key];
  parked += delta;
  if (parked <= 0) parked_.erase(key);
}

bool KeyGate::HasParked(const std::string& key) const {
  return !parked_.empty() && parked_.count(key) > 0;
}

double KeyGate::AchievedRate(const std::string& key) const {
  auto it = starts_.find(key);
  if (it == starts_.end()) return 0;
  absl::Duration since_epoch = clock_->Now() - absl::UnixEpoch();
  int64_t window =
      absl::ToInt64Seconds(since_epoch) / absl::ToInt64Seconds(kRateWindow);
  const Starts& s = it->second;
  if (s.window < window - 1) return 0;
  uint64_t current = s.window == window ? s.current : 0;
  uint64_t previous = s.window == window ? s.previous : s.current;
  double into = absl::FDivDuration(since_epoch % kRateWindow, kRateWindow);
  // The last 10 s: all of this window so far, and the part of the previous
  // one still inside them.
  return (current + previous * (1 - into)) / absl::ToDoubleSeconds(kRateWindow);
}

void KeyGate::FillEntry(const std::string& key, v1::KeyLimit* entry) const {
  entry->set_key(key);
  if (auto it = limits_.find(key); it != limits_.end()) {
    entry->set_per_second(it->second.per_second);
    entry->set_burst(it->second.burst);
  }
  if (auto it = paused_.find(key); it != paused_.end()) {
    absl::Duration left = it->second - clock_->Now();
    if (left > absl::ZeroDuration())
      entry->set_paused_ms(
          static_cast<uint64_t>(std::ceil(absl::ToDoubleMilliseconds(left))));
  }
}

v1::LimitTable KeyGate::Table(uint32_t live_workers) const {
  v1::LimitTable table;
  table.set_live_workers(live_workers);
  for (const auto& [key, limit] : limits_) FillEntry(key, table.add_limits());
  for (const auto& [key, until] : paused_) {
    if (limits_.count(key) == 0) FillEntry(key, table.add_limits());
  }
  return table;
}

v1::LimitTable KeyGate::Listing(uint32_t live_workers) const {
  v1::LimitTable table = Table(live_workers);
  for (v1::KeyLimit& entry : *table.mutable_limits()) {
    entry.set_achieved_per_second(AchievedRate(entry.key()));
    auto it = parked_.find(entry.key());
    if (it != parked_.end()) entry.set_waiting(it->second);
  }
  return table;
}

}  // namespace fetchfleet::coordinator
