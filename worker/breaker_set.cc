#include "worker/breaker_set.h"

namespace fetchfleet::worker {
namespace {

// Idle closed breakers and views are dropped once a set grows past this, so
// a job over millions of hosts does not grow the worker.
constexpr size_t kPruneAbove = 4096;

}  // namespace

void BreakerSet::set_event_listener(EventListener listener) {
  std::lock_guard<std::mutex> lock(mu_);
  listener_ = std::move(listener);
}

void BreakerSet::Report(v1::BreakerEvent event) {
  EventListener listener;
  {
    std::lock_guard<std::mutex> lock(mu_);
    listener = listener_;
  }
  if (listener) listener(std::move(event));
}

void BreakerSet::SetConfigs(const v1::BreakerTable& table) {
  std::lock_guard<std::mutex> lock(mu_);
  configs_.clear();
  for (const v1::BreakerSetting& setting : table.settings())
    configs_[setting.key()] = BreakerConfig::FromProto(setting.config());
  for (auto& [key, breaker] : local_) {
    auto it = configs_.find(key);
    breaker.set_config(it == configs_.end() ? BreakerConfig{} : it->second);
  }
}

BreakerConfig BreakerSet::Config(absl::string_view key) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = configs_.find(key);
  return it == configs_.end() ? BreakerConfig{} : it->second;
}

void BreakerSet::set_live_workers(int64_t n) {
  std::lock_guard<std::mutex> lock(mu_);
  live_workers_ = std::max<int64_t>(n, 1);
}

int64_t BreakerSet::live_workers() const {
  std::lock_guard<std::mutex> lock(mu_);
  return live_workers_;
}

std::optional<BreakerSet::View> BreakerSet::GetView(
    absl::string_view key) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = views_.find(key);
  if (it == views_.end()) return std::nullopt;
  return it->second;
}

void BreakerSet::SetView(absl::string_view key, BreakerState state,
                         absl::Duration remaining, int64_t version) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = views_.find(key);
  if (it != views_.end() && it->second.version > version) return;
  if (it == views_.end()) {
    if (state == BreakerState::kClosed && version == 0)
      return;  // closed and never changed: no view is the same
    if (views_.size() > kPruneAbove) PruneLocked();
    it = views_.emplace(std::string(key), View{}).first;
  }
  it->second = View{state, clock_->Now() + remaining, version};
}

void BreakerSet::ClearViews() {
  std::lock_guard<std::mutex> lock(mu_);
  views_.clear();
}

Breaker& BreakerSet::LocalLocked(absl::string_view key) {
  auto it = local_.find(key);
  if (it != local_.end()) return it->second;
  if (local_.size() > kPruneAbove) PruneLocked();
  auto config = configs_.find(key);
  return local_
      .emplace(
          std::string(key),
          Breaker(config == configs_.end() ? BreakerConfig{} : config->second))
      .first->second;
}

void BreakerSet::PruneLocked() {
  absl::Time now = clock_->Now();
  for (auto it = local_.begin(); it != local_.end();) {
    Breaker& breaker = it->second;
    if (breaker.state() == BreakerState::kClosed &&
        breaker.Counts(now).calls == 0) {
      local_.erase(it++);
    } else {
      ++it;
    }
  }
  for (auto it = views_.begin(); it != views_.end();) {
    // A view a minute past its period (or its closing) is stale either way.
    if (it->second.until + absl::Minutes(1) < now) {
      views_.erase(it++);
    } else {
      ++it;
    }
  }
}

v1::BreakerEvent BreakerSet::EventLocked(absl::string_view key,
                                         Breaker& breaker) {
  v1::BreakerEvent event;
  event.set_key(std::string(key));
  event.set_state(BreakerStateToProto(breaker.state()));
  event.set_open_ms(
      static_cast<uint64_t>(absl::ToInt64Milliseconds(breaker.period())));
  Breaker::Window window = breaker.Counts(clock_->Now());
  event.set_calls(static_cast<uint64_t>(window.calls));
  event.set_failures(static_cast<uint64_t>(window.failures));
  event.set_failing_workers(static_cast<uint32_t>(window.failing_workers));
  return event;
}

Breaker::Admission BreakerSet::AdmitLocal(absl::string_view key,
                                          absl::Duration probe_ttl) {
  std::optional<v1::BreakerEvent> event;
  Breaker::Admission admission;
  {
    std::lock_guard<std::mutex> lock(mu_);
    Breaker& breaker = LocalLocked(key);
    BreakerState before = breaker.state();
    admission = breaker.Admit(clock_->Now(), probe_ttl);
    if (breaker.state() != before) event = EventLocked(key, breaker);
  }
  if (event) Report(std::move(*event));
  return admission;
}

void BreakerSet::RecordLocal(absl::string_view key, int64_t successes,
                             int64_t failures) {
  std::optional<v1::BreakerEvent> event;
  {
    std::lock_guard<std::mutex> lock(mu_);
    Breaker& breaker = LocalLocked(key);
    // The local breaker sees this worker alone: its quorum is one.
    if (breaker.Record(clock_->Now(), "self", successes, failures, 1))
      event = EventLocked(key, breaker);
  }
  if (event) Report(std::move(*event));
}

void BreakerSet::ProbeDoneLocal(absl::string_view key, uint64_t token,
                                bool success) {
  std::optional<v1::BreakerEvent> event;
  {
    std::lock_guard<std::mutex> lock(mu_);
    Breaker& breaker = LocalLocked(key);
    if (breaker.ProbeDone(clock_->Now(), token, success))
      event = EventLocked(key, breaker);
  }
  if (event) Report(std::move(*event));
}

bool BreakerSet::LocalClosed(absl::string_view key) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = local_.find(key);
  return it == local_.end() || it->second.state() == BreakerState::kClosed;
}

bool BreakerSet::ViewClosed(absl::string_view key) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = views_.find(key);
  return it == views_.end() || it->second.state == BreakerState::kClosed;
}

bool BreakerSet::LocalHolding(absl::string_view key) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = local_.find(key);
  return it != local_.end() && it->second.state() == BreakerState::kOpen &&
         clock_->Now() < it->second.open_until();
}

bool BreakerSet::ViewHolding(absl::string_view key) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = views_.find(key);
  return it != views_.end() && it->second.state == BreakerState::kOpen &&
         clock_->Now() < it->second.until;
}

void BreakerSet::Reset(absl::string_view key) {
  std::lock_guard<std::mutex> lock(mu_);
  local_.erase(key);
  views_.erase(key);
}

}  // namespace fetchfleet::worker
