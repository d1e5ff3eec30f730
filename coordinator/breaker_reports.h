// BreakerReports: what workers report of their circuit breakers. Each change
// of state is reported once, by the worker whose call made it, so this logs
// each change once fleet-wide, keeps the last change per key (the listing of
// `fetchctl breakers` without Redis) and counts changes and opens for the
// metrics. The Scheduler hands it the events of worker messages; the
// BreakerRegistry and the metrics read it.
//
// Bounded: at most kMaxKeys keys are listed (closed ones are forgotten first)
// and counted per key (keys with a limit or breaker settings only).
//
// Loop thread only.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "absl/time/time.h"
#include "common/clock.h"
#include "proto/fetchfleet.pb.h"

namespace fetchfleet::coordinator {

class BreakerReports {
 public:
  static constexpr size_t kMaxKeys = 10000;

  // Report: the last state change reported for a key.
  struct Report {
    v1::BreakerEvent event;
    absl::Time at;
    int64_t at_unix_ms = 0;
    uint64_t opened = 0;  // changes to open (trips and failed probes)
  };

  explicit BreakerReports(const Clock* clock) : clock_(clock) {}

  // OnEvent records and logs a change `worker` reported; `configured`: the
  // key has a limit or breaker settings (its opens are counted by key).
  void OnEvent(const std::string& worker, const v1::BreakerEvent& event,
               bool configured);
  // Forget drops a key's report (an operator reset its breaker).
  void Forget(const std::string& key) { reports_.erase(key); }

  const std::map<std::string, Report>& reports() const { return reports_; }
  // Changes reported since the coordinator started.
  uint64_t changes() const { return changes_; }
  // Times breakers opened since the coordinator started: per configured key
  // (never forgotten, so the counts only grow), and over all keys.
  const std::map<std::string, uint64_t>& opens() const { return opens_; }
  uint64_t opens_total() const { return opens_total_; }

 private:
  void CountOpen(const std::string& key, bool configured);

  const Clock* const clock_;
  std::map<std::string, Report> reports_;
  uint64_t changes_ = 0;
  std::map<std::string, uint64_t> opens_;
  uint64_t opens_total_ = 0;
};

}  // namespace fetchfleet::coordinator
