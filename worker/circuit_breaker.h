// CircuitBreaker: what a fetch shard asks before each attempt and tells after
// it. Two implementations: LocalCircuitBreaker (this worker's own breakers;
// no Redis) and RedisCircuitBreaker (the fleet's, shared through Redis).
//
// Loop thread of the shard that owns it.
#pragma once

#include "absl/functional/any_invocable.h"
#include "absl/strings/string_view.h"
#include "common/breaker.h"
#include "worker/breaker_set.h"

namespace fetchfleet::worker {

class CircuitBreaker {
 public:
  using Admitted = absl::AnyInvocable<void(Breaker::Admission)>;
  virtual ~CircuitBreaker() = default;

  // Admit decides whether a call to `key` may go now: a normal call, the one
  // probe of a half-open breaker (its token goes back to ProbeDone), or
  // refused. `probe_ttl` bounds how long the fleet waits for a probe that
  // never reports. `done` may run inside Admit.
  virtual void Admit(absl::string_view key, absl::Duration probe_ttl,
                     Admitted done) = 0;
  // Record feeds one call's outcome (not a probe's) to the key's window.
  virtual void Record(absl::string_view key, CallOutcome outcome) = 0;
  virtual void ProbeDone(absl::string_view key, uint64_t token,
                         bool success) = 0;
  virtual BreakerConfig Config(absl::string_view key) = 0;
  // Closed: whether a call admitted earlier may still start now. A request
  // that waited for its rate slot checks again, so a breaker that opened
  // meanwhile stops it (one map lookup, no Redis).
  virtual bool Closed(absl::string_view key) = 0;
  // Holding: an open period is running (no call, not even a probe, is due).
  virtual bool Holding(absl::string_view key) = 0;
};

// LocalCircuitBreaker: the worker's BreakerSet's local breakers.
class LocalCircuitBreaker final : public CircuitBreaker {
 public:
  explicit LocalCircuitBreaker(BreakerSet* set) : set_(set) {}

  void Admit(absl::string_view key, absl::Duration probe_ttl,
             Admitted done) override {
    done(set_->AdmitLocal(key, probe_ttl));
  }
  void Record(absl::string_view key, CallOutcome outcome) override {
    if (outcome == CallOutcome::kIgnored) return;
    bool failed = outcome == CallOutcome::kFailure;
    set_->RecordLocal(key, failed ? 0 : 1, failed ? 1 : 0);
  }
  void ProbeDone(absl::string_view key, uint64_t token, bool success) override {
    set_->ProbeDoneLocal(key, token, success);
  }
  BreakerConfig Config(absl::string_view key) override {
    return set_->Config(key);
  }
  bool Closed(absl::string_view key) override { return set_->LocalClosed(key); }
  bool Holding(absl::string_view key) override {
    return set_->LocalHolding(key);
  }

 private:
  BreakerSet* const set_;
};

}  // namespace fetchfleet::worker
