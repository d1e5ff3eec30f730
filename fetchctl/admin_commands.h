// fetchctl's one-shot commands: jobs, status, cancel, workers, limits. Tables
// for people on stdout.
#pragma once

#include <grpcpp/grpcpp.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "common/rate_limiter.h"

namespace fetchfleet::fetchctl {

int ListJobsCommand(const std::shared_ptr<grpc::Channel>& channel);
// StatusCommand prints a job's progress and statistics, or with `stats_json`
// its --stats-json object alone.
int StatusCommand(const std::shared_ptr<grpc::Channel>& channel,
                  const std::string& job_id, bool stats_json);
int CancelCommand(const std::shared_ptr<grpc::Channel>& channel,
                  const std::string& job_id);
int WorkersCommand(const std::shared_ptr<grpc::Channel>& channel);
// LimitsCommand: `limits list`, `limits set KEY RATE [--burst N]`, `limits
// delete KEY`.
int LimitsCommand(const std::shared_ptr<grpc::Channel>& channel,
                  const std::vector<std::string>& args, int64_t burst);
// ParseRateFlags reads submit's --rate KEY=RATE and --burst KEY=N.
absl::StatusOr<std::map<std::string, RateLimit>> ParseRateFlags(
    const std::vector<std::string>& rates,
    const std::vector<std::string>& bursts);
// SetLimits stores limits on the coordinator (before a job starts).
absl::Status SetLimits(const std::shared_ptr<grpc::Channel>& channel,
                       const std::map<std::string, RateLimit>& limits);

}  // namespace fetchfleet::fetchctl
