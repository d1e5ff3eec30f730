#include "worker/breaker_events.h"

#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "common/breaker_scripts.h"

namespace fetchfleet::worker {

BreakerEvents::BreakerEvents(EventLoop* loop, BreakerSet* set,
                             RedisClient::Options options)
    : set_(set), redis_(loop, std::move(options)) {}

void BreakerEvents::Start() {
  redis_.set_on_state_change([this](bool up) {
    if (up) set_->ClearViews();
  });
  redis_.Subscribe(std::string(kBreakerChannel), [this](std::string payload) {
    ++received_;
    Apply(payload, set_);
  });
  redis_.Start();
}

bool BreakerEvents::Apply(absl::string_view payload, BreakerSet* set) {
  std::vector<absl::string_view> parts = absl::StrSplit(payload, '\n');
  int64_t ms = 0;
  int64_t version = 0;
  if (parts.size() != 4 || parts[0].empty() ||
      !absl::SimpleAtoi(parts[2], &ms) || !absl::SimpleAtoi(parts[3], &version))
    return false;
  BreakerState state = ParseBreakerState(parts[1]);
  set->SetView(parts[0], state, absl::Milliseconds(ms), version);
  return true;
}

}  // namespace fetchfleet::worker
