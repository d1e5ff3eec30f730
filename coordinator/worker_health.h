// WorkerHealth: outlier ejection for workers (Envoy's outlier detection, with
// the fleet as the baseline). A worker is taken out of dispatch when
//   - it held leases past their deadlines without completing any request
//     since they were dealt (a frozen or hostile worker that heartbeats but
//     never answers would otherwise be dealt its requeued leases again), or
//   - most of its recent results failed to reach their upstream (connect, DNS,
//     timeout, TLS) while the rest of the fleet's reached theirs (its own
//     network is broken: its requests should go elsewhere).
// An ejected worker gets no new work for an ejection period (30 s, doubling per
// ejection, at most 5 min), then is on probation: a few leases at a time until
// enough of them succeed. At most half of the workers (never the last one) are
// ejected at once, so a fleet-wide outage ejects nobody.
//
// Loop thread only. Time comes from the caller.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/time/time.h"
#include "proto/fetchfleet.pb.h"

namespace fetchfleet::coordinator {

struct WorkerHealthOptions {
  absl::Duration window = absl::Seconds(10);
  size_t min_results = 20;     // a worker's, and the rest of the fleet's
  double failure_ratio = 0.5;  // a worker failing at least this share...
  // ...while the rest of the fleet fails at most this fraction of its share.
  double fleet_factor = 0.25;
  absl::Duration base_ejection = absl::Seconds(30);
  absl::Duration max_ejection = absl::Minutes(5);
  size_t probation_leases = 16;    // at most this many out while on probation
  size_t probation_successes = 8;  // results reaching an upstream to pass
  double max_ejected_fraction = 0.5;
};

// ResultClass: what a result says about the worker that produced it.
enum class ResultClass { kReached, kTransportFailure, kNeither };
ResultClass ClassifyForHealth(const v1::FetchResult& result);

class WorkerHealth {
 public:
  explicit WorkerHealth(WorkerHealthOptions options = {});

  void AddWorker(uint64_t worker, std::string name);
  void RemoveWorker(uint64_t worker);

  // OnResult records a completed request.
  void OnResult(uint64_t worker, const v1::FetchResult& result, absl::Time now);
  // OnLeasesExpired records `n` leases of `worker` that outlived their
  // deadlines; `oldest_granted` is when the first of them was dealt.
  void OnLeasesExpired(uint64_t worker, size_t n, absl::Time oldest_granted,
                       absl::Time now);

  // Evaluate ejects the workers that crossed a threshold and moves ejected
  // ones whose period ended to probation; it returns the workers whose
  // dispatch state changed (the caller recounts live workers and dispatches).
  std::vector<uint64_t> Evaluate(absl::Time now);

  // MayTake: whether `worker`, holding `leases` now, may be dealt one more.
  bool MayTake(uint64_t worker, size_t leases, absl::Time now) const;
  bool Ejected(uint64_t worker, absl::Time now) const;
  // Ejections since the coordinator started.
  uint64_t ejections_total() const { return ejections_total_; }
  // Fill sets the ejection fields of a listing entry.
  void Fill(uint64_t worker, absl::Time now, int64_t now_unix_ms,
            v1::WorkerInfo* info) const;

 private:
  struct Bucket {  // one second of results
    int64_t second = 0;
    uint32_t reached = 0;
    uint32_t failed = 0;
  };
  struct State {
    std::string name;
    std::vector<Bucket> buckets;  // ring over the window, by second
    absl::Time last_completion = absl::InfinitePast();
    // Set by OnLeasesExpired when nothing completed since those leases were
    // dealt; Evaluate ejects for it.
    size_t stalled_leases = 0;
    bool ejected = false;  // until Evaluate moves it to probation
    absl::Time ejected_until = absl::InfinitePast();
    bool on_probation = false;
    size_t probation_reached = 0;
    int ejections = 0;  // consecutive, for the doubling period
    absl::Time healthy_since = absl::InfinitePast();
    std::string reason;
  };
  void Count(State& state, ResultClass cls, absl::Time now);
  void Sum(const State& state, absl::Time now, uint64_t* reached,
           uint64_t* failed) const;
  void Eject(uint64_t worker, State& state, absl::Time now, std::string why);
  size_t EjectedCount(absl::Time now) const;
  uint64_t ejections_total_ = 0;

  static constexpr size_t kMaxDeparted = 10000;

  const WorkerHealthOptions options_;
  absl::flat_hash_map<uint64_t, State> workers_;
  // Ejected or probation state of workers that left, by name, so that
  // reconnecting does not clear it.
  std::map<std::string, State> departed_;
};

}  // namespace fetchfleet::coordinator
