#include "common/clock.h"

#include <chrono>

namespace fetchfleet {
namespace {

class SteadyClock final : public Clock {
 public:
  absl::Time Now() const override {
    auto since_boot = std::chrono::steady_clock::now().time_since_epoch();
    return absl::UnixEpoch() +
           absl::Nanoseconds(
               std::chrono::duration_cast<std::chrono::nanoseconds>(since_boot)
                   .count());
  }
};

}  // namespace

const Clock* Clock::Real() {
  static const SteadyClock* const clock = new SteadyClock();
  return clock;
}

}  // namespace fetchfleet
