#include "worker/redis_rate_limiter.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "worker/redis_gcra.h"

namespace fetchfleet::worker {

RedisRateLimiter::RedisRateLimiter(EventLoop* loop, LimitTable* table,
                                   LocalRateLimiter* fallback, Options options)
    : loop_(loop),
      table_(table),
      fallback_(fallback),
      options_(std::move(options)),
      redis_(loop, options_.redis) {
  redis_.set_on_state_change([this](bool up) { OnRedisState(up); });
}

RedisRateLimiter::~RedisRateLimiter() {
  for (auto& [key, state] : keys_) {
    if (state.retry_timer != 0) loop_->CancelTimer(state.retry_timer);
  }
}

void RedisRateLimiter::Start() { redis_.Start(); }

void RedisRateLimiter::Reserve(absl::string_view key, Granted granted) {
  KeyPolicy policy = table_->Lookup(key);
  if (!policy.limit) {
    granted(std::max(policy.paused_until - loop_->Now(), absl::ZeroDuration()));
    return;
  }
  std::string name(key);
  KeyState& state = keys_[name];
  state.limit = *policy.limit;
  state.waiters.push_back(std::move(granted));
  // Not at once: at the end of this loop turn, and no sooner than the
  // key's call spacing allows, so reserves share calls.
  if (!state.call_in_flight && state.retry_timer == 0)
    RetryLater(name, state, state.next_call_at - loop_->Now());
}

absl::Duration RedisRateLimiter::RecordRoundTrip(absl::Duration rtt) {
  recent_rtts_[rtt_count_++ % recent_rtts_.size()] = rtt;
  size_t n = std::min(rtt_count_, recent_rtts_.size());
  return *std::min_element(recent_rtts_.begin(), recent_rtts_.begin() + n);
}

absl::Duration RedisRateLimiter::CallSpacing(const RateLimit& limit) const {
  // About kSlotsPerCall of this worker's share of the slots per call: at
  // 50,000/s over 5 workers, one call per 2 ms carries ~20 requests. Capped,
  // so a slow key's request waits at most max_call_spacing for its call.
  absl::Duration share = GcraInterval(limit.per_second) *
                         static_cast<int64_t>(table_->live_workers());
  return std::min(share * kSlotsPerCall, options_.max_call_spacing);
}

void RedisRateLimiter::Pause(absl::string_view key,
                             absl::Duration retry_after) {
  std::string name(key);
  table_->Pause(name, retry_after);  // this worker at once; the coordinator
                                     // relays it to the others
  if (!redis_.connected()) return;
  // In Redis too, so limited keys' slots move past the pause for every worker
  // and every coordinator.
  redis_.EvalSha(PauseScript(), {RateStateKey(name)},
                 {absl::StrCat(absl::ToInt64Milliseconds(retry_after))},
                 [name](absl::StatusOr<RedisReply> reply) {
                   if (!reply.ok())
                     FF_LOG(WARNING)
                         << LogField(kLogKey, name) << "pausing " << name
                         << " in redis: " << reply.status().message();
                 });
}

void RedisRateLimiter::Pump(const std::string& key) {
  auto it = keys_.find(key);
  if (it == keys_.end()) return;
  KeyState& state = it->second;
  if (state.call_in_flight || state.retry_timer != 0 || state.waiters.empty())
    return;
  if (Held(key)) {
    // The key's breaker opened: these requests will not call it now, so
    // they get no slots (which would be lost, and would queue the breaker's
    // probe behind them). They go back to their breaker.
    std::deque<Granted> waiters = std::move(state.waiters);
    state.waiters.clear();
    for (Granted& granted : waiters) granted(absl::InfiniteDuration());
    MaybeForget(key);
    return;
  }
  if (!redis_.connected()) {
    if (options_.failure == RedisFailureMode::kLocal) ServeLocally(key, state);
    // kClosed: the waiters stay until OnRedisState(true).
    return;
  }
  int64_t want = std::min<int64_t>(state.waiters.size(), options_.max_batch);
  state.call_in_flight = true;
  state.next_call_at = loop_->Now() + CallSpacing(state.limit);
  state.sent_at = loop_->Now();
  ++redis_calls_;
  redis_.EvalSha(ReserveScript(), {RateStateKey(key)},
                 {absl::StrCat(state.limit.per_second),
                  absl::StrCat(state.limit.burst), absl::StrCat(want),
                  absl::StrCat(absl::ToInt64Microseconds(options_.lookahead))},
                 [this, key](absl::StatusOr<RedisReply> reply) {
                   OnReserved(key, std::move(reply));
                 });
}

void RedisRateLimiter::OnReserved(const std::string& key,
                                  absl::StatusOr<RedisReply> reply) {
  auto it = keys_.find(key);
  if (it == keys_.end()) return;
  KeyState& state = it->second;
  state.call_in_flight = false;
  if (!reply.ok() || reply->type != RedisReply::Type::kArray ||
      reply->elements.empty()) {
    if (!absl::IsUnavailable(reply.status())) {
      FF_LOG(WARNING) << LogField(kLogKey, key) << "rate limit for " << key
                      << ": "
                      << (reply.ok() ? "unexpected reply"
                                     : reply.status().message());
    }
    if (options_.failure == RedisFailureMode::kLocal) {
      ServeLocally(key, state);
    } else if (redis_.connected()) {
      RetryLater(key, state, absl::Milliseconds(100));
    }
    return;
  }
  // A reply that took much longer than the fastest recent round trip may
  // have sat in the socket while this loop stalled: its slots may be long
  // past already. Starting them now could bunch them with other workers'
  // slots, so they are given up, like a slot reached too late
  // (kMaxSlotLateness), and the waiters ask again.
  absl::Duration rtt = loop_->Now() - state.sent_at;
  if (rtt - RecordRoundTrip(rtt) > kMaxSlotLateness &&
      reply->elements.size() > 1) {
    ++stale_replies_;
    RetryLater(key, state, absl::ZeroDuration());
    return;
  }
  // The granted callbacks run last: they may reserve again, which can add
  // keys and move `state`.
  const std::vector<RedisReply>& out = reply->elements;
  std::vector<std::pair<Granted, absl::Duration>> ready;
  for (size_t i = 1; i < out.size() && !state.waiters.empty(); ++i) {
    ready.emplace_back(std::move(state.waiters.front()),
                       absl::Microseconds(out[i].integer));
    state.waiters.pop_front();
  }
  granted_ += ready.size();
  absl::Duration retry_after = absl::Microseconds(out[0].integer);
  if (state.waiters.empty()) {
    MaybeForget(key);
  } else if (retry_after == absl::ZeroDuration()) {
    // More came in than the call asked for: ask again when spacing allows.
    RetryLater(key, state, state.next_call_at - loop_->Now());
  } else {
    RetryLater(key, state, retry_after + options_.refill);
  }
  for (auto& [granted, delay] : ready) granted(delay);
}

void RedisRateLimiter::ServeLocally(const std::string& key, KeyState& state) {
  std::deque<Granted> waiters = std::move(state.waiters);
  state.waiters.clear();
  MaybeForget(key);  // `state` is gone from here on
  granted_ += waiters.size();
  for (Granted& granted : waiters) granted(fallback_->DelayFor(key));
}

void RedisRateLimiter::RetryLater(const std::string& key, KeyState& state,
                                  absl::Duration delay) {
  delay = std::max(delay, absl::ZeroDuration());
  state.retry_timer = loop_->RunAfter(delay, [this, key] {
    auto it = keys_.find(key);
    if (it == keys_.end()) return;
    it->second.retry_timer = 0;
    Pump(key);
  });
}

void RedisRateLimiter::MaybeForget(const std::string& key) {
  auto it = keys_.find(key);
  // A key asked about lately stays, to keep its call spacing; the map holds
  // at most the limited keys.
  if (it != keys_.end() && it->second.waiters.empty() &&
      !it->second.call_in_flight && it->second.retry_timer == 0 &&
      it->second.next_call_at <= loop_->Now()) {
    keys_.erase(it);
  }
}

void RedisRateLimiter::OnRedisState(bool up) {
  std::vector<std::string> waiting;
  for (auto& [key, state] : keys_) {
    if (!state.waiters.empty()) waiting.push_back(key);
  }
  if (!up && options_.failure == RedisFailureMode::kLocal && !waiting.empty()) {
    FF_LOG(WARNING) << "redis down: " << waiting.size()
                    << " limited keys fall back to local limits";
  }
  for (const std::string& key : waiting) Pump(key);
}

}  // namespace fetchfleet::worker
