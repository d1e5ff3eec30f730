// Aggregate (the gateway pattern): one call that fans out to a few named
// parts on the fleet and merges their answers (README, "The gateway").
//
//   {"parts": [{"name": "user", "url": "...", "required": true},
//              {"name": "recs", "url": "...", "required": false,
//               "fallback": []}],
//    "deadline_ms": 800}
//
// A part is a request line's JSON fields (url, method, headers, body,
// rate_key, timeout_ms, max_attempts) plus name, required (default true) and
// fallback (any JSON; default null). The merged document maps each name to
// its parsed JSON body, or an optional part's fallback when it failed (its
// name in "degraded", its error in "errors"); a failed required part fails
// the call with an error document.
//
// This file is the pure part: parsing and merging. Thread-safe.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "proto/fetchfleet.pb.h"

namespace fetchfleet::coordinator {

inline constexpr size_t kMaxAggregateParts = 64;
inline constexpr int64_t kDefaultAggregateDeadlineMs = 10000;
// A part retries once within the deadline unless it says otherwise.
inline constexpr uint32_t kDefaultPartAttempts = 2;

struct AggregatePart {
  std::string name;
  bool required = true;
  std::string fallback = "null";  // JSON text
  v1::FetchRequest request;       // index = the part's position
};

struct AggregatePlan {
  std::vector<AggregatePart> parts;
  absl::Duration deadline;
};

// ParseAggregate validates the whole call; an error names the part and the
// problem.
absl::StatusOr<AggregatePlan> ParseAggregate(absl::string_view json);

// PartOutcome: what came back for one part by the deadline.
struct PartOutcome {
  std::optional<v1::FetchResult> result;  // none: the deadline came first
  absl::Duration at;                      // since the call started
};

// MergeAggregate builds the response from the parts' outcomes (one per part,
// in plan order).
v1::AggregateResponse MergeAggregate(const AggregatePlan& plan,
                                     const std::vector<PartOutcome>& outcomes,
                                     absl::Duration elapsed);

}  // namespace fetchfleet::coordinator
