// FakeClock: a Clock that moves only when a test advances it. Thread-safe.
#pragma once

#include <mutex>

#include "common/clock.h"

namespace fetchfleet::testing {

class FakeClock final : public Clock {
 public:
  absl::Time Now() const override {
    std::lock_guard<std::mutex> lock(mu_);
    return now_;
  }
  void Advance(absl::Duration d) {
    std::lock_guard<std::mutex> lock(mu_);
    now_ += d;
  }
  void Set(absl::Time t) {
    std::lock_guard<std::mutex> lock(mu_);
    now_ = t;
  }

 private:
  mutable std::mutex mu_;
  absl::Time now_ = absl::UnixEpoch() + absl::Hours(1000);
};

}  // namespace fetchfleet::testing
