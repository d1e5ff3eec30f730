// BreakerSet: a worker's breakers, shared by its fetch shards.
//
// It holds three things per rate key:
//   - the settings the coordinator pushed (defaults for keys not listed);
//   - the cached view of the fleet's breaker in Redis (state and when an open
//     period ends), refreshed by every Redis reply and by the pub/sub events,
//     so a request's admission is a map lookup, not a Redis read;
//   - a local Breaker: the whole breaker without Redis (one worker), and each
//     worker's own while Redis is unreachable.
// A state change this worker caused goes to the event listener (the worker
// reports it to the coordinator).
//
// Thread-safe.
#pragma once

#include <functional>
#include <mutex>
#include <optional>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "common/breaker.h"
#include "common/clock.h"
#include "proto/fetchfleet.pb.h"

namespace fetchfleet::worker {

class BreakerSet {
 public:
  struct View {
    BreakerState state = BreakerState::kClosed;
    absl::Time until = absl::InfinitePast();  // open: end of the period
    int64_t version = 0;  // the change's Redis time (ms): newest wins
  };
  using EventListener = std::function<void(v1::BreakerEvent)>;

  explicit BreakerSet(const Clock* clock) : clock_(clock) {}

  const Clock* clock() const { return clock_; }
  void set_event_listener(EventListener listener);
  void Report(v1::BreakerEvent event);

  // --- settings
  void SetConfigs(const v1::BreakerTable& table);
  BreakerConfig Config(absl::string_view key) const;
  void set_live_workers(int64_t n);
  int64_t live_workers() const;

  // --- the fleet's breakers, as this worker last heard
  std::optional<View> GetView(absl::string_view key) const;
  // SetView records the state Redis reported, `remaining` of an open period
  // or probe left, unless the view already holds a newer change: replies and
  // events may arrive out of order.
  void SetView(absl::string_view key, BreakerState state,
               absl::Duration remaining, int64_t version);
  // ClearViews forgets every view (after a gap in the event stream).
  void ClearViews();

  // --- this worker's own breakers
  Breaker::Admission AdmitLocal(absl::string_view key,
                                absl::Duration probe_ttl);
  void RecordLocal(absl::string_view key, int64_t successes, int64_t failures);
  void ProbeDoneLocal(absl::string_view key, uint64_t token, bool success);
  bool LocalClosed(absl::string_view key) const;
  // ViewClosed: no open period and no probe out, as far as the view knows.
  bool ViewClosed(absl::string_view key) const;
  // *Holding: an open period is running.
  bool LocalHolding(absl::string_view key) const;
  bool ViewHolding(absl::string_view key) const;

  // Reset forgets a key's local breaker and view (an operator's reset).
  void Reset(absl::string_view key);

 private:
  Breaker& LocalLocked(absl::string_view key);
  void PruneLocked();
  v1::BreakerEvent EventLocked(absl::string_view key, Breaker& breaker);

  const Clock* const clock_;
  mutable std::mutex mu_;
  absl::flat_hash_map<std::string, BreakerConfig> configs_;
  absl::flat_hash_map<std::string, View> views_;
  absl::flat_hash_map<std::string, Breaker> local_;
  int64_t live_workers_ = 1;
  EventListener listener_;
};

}  // namespace fetchfleet::worker
