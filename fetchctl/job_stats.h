// How fetchctl shows a job's statistics (JobStats): the block `status` prints,
// the summary line submit, run and watch end with, and the one JSON object of
// --stats-json, for scripts (its format is in the README, "fetchctl"). Pure
// functions of a JobStatus. Thread-safe.
#pragma once

#include <string>

#include "proto/fetchfleet.pb.h"

namespace fetchfleet::fetchctl {

// JobStateName: running, done, cancelled.
const char* JobStateName(v1::JobState state);

// StatsBlock: `status`'s lines for the statistics, each "name: value\n",
// aligned with the progress lines above them.
std::string StatsBlock(const v1::JobStatus& status);

// StatsSummary: one line without its newline, e.g. "latency p50 41.2 ms, p90
// 80.1 ms, p99 120 ms, max 133 ms; 20 ok, 8 http_status (5 4xx, 3 5xx);
// 12.4 KiB received"; latency is left out when no request made an attempt.
std::string StatsSummary(const v1::JobStatus& status);

// StatsJson: the --stats-json object, on one line without its newline.
std::string StatsJson(const v1::JobStatus& status);

}  // namespace fetchfleet::fetchctl
