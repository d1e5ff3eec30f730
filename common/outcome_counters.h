// OutcomeCounters: one counter family labelled by outcome (ok or the error
// kind's contract name) and HTTP status class ("2xx" ... "5xx", "none" when
// no response came), for results and attempts alike. A series exists once it
// has been seen: at most 14 outcomes x 7 classes, whatever the traffic. The
// hot path is an atomic load after the first use of a combination.
//
// Thread-safe.
#pragma once

#include <array>
#include <atomic>
#include <mutex>
#include <string>

#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "proto/fetchfleet.pb.h"

namespace fetchfleet {

// StatusClass: "1xx" ... "5xx", "none" for 0, "other" for anything else.
const char* StatusClass(int http_status);
// OutcomeName: "ok", or the error kind's name ("timeout", "http_status" ...).
const char* OutcomeName(v1::ErrorKind error);

class OutcomeCounters {
 public:
  explicit OutcomeCounters(prometheus::Family<prometheus::Counter>* family)
      : family_(family) {}

  prometheus::Counter& Get(v1::ErrorKind error, int http_status);

 private:
  static constexpr int kOutcomes = 14;  // the 13 kinds and "unknown"
  static constexpr int kClasses = 7;
  prometheus::Family<prometheus::Counter>* const family_;
  std::mutex mu_;  // taken only to create a series
  std::array<std::atomic<prometheus::Counter*>, kOutcomes * kClasses> cells_{};
};

}  // namespace fetchfleet
