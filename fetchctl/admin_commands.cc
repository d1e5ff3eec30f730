#include "fetchctl/admin_commands.h"

#include <algorithm>
#include <cstdio>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "common/grpc_status.h"
#include "fetchctl/exit_codes.h"
#include "fetchctl/job_stats.h"
#include "proto/fetchfleet.grpc.pb.h"

namespace fetchfleet::fetchctl {
namespace {

constexpr auto kCallTimeout = std::chrono::seconds(10);

void PrintStatus(const v1::JobStatus& s) {
  std::printf("job:        %s\n", s.job_id().c_str());
  std::printf("owner:      %s\n", s.owner().c_str());
  std::printf("state:      %s\n", JobStateName(s.state()));
  std::printf("progress:   %llu/%llu%s\n",
              static_cast<unsigned long long>(s.done()),
              static_cast<unsigned long long>(s.total()),
              s.input_closed() ? "" : " (input still arriving)");
  std::printf("ok:         %llu\n", static_cast<unsigned long long>(s.ok()));
  std::printf("failed:     %llu\n",
              static_cast<unsigned long long>(s.failed()));
  std::printf("retries:    %llu\n",
              static_cast<unsigned long long>(s.retries()));
  std::printf("in flight:  %llu\n",
              static_cast<unsigned long long>(s.in_flight()));
  std::printf("pending:    %llu\n",
              static_cast<unsigned long long>(s.pending()));
  std::printf("elapsed:    %.1f s\n", s.elapsed_s());
  std::printf("oldest seq: %llu (watch --from resumes from here or later)\n",
              static_cast<unsigned long long>(s.oldest_seq()));
  std::printf("durable:    %s\n",
              s.durable() ? "yes (in the coordinator's job store)"
                          : "no (lost if the coordinator restarts)");
  if (!s.store_error().empty())
    std::printf("store:      cannot write (%s): no progress until it can\n",
                s.store_error().c_str());
  std::fputs(StatsBlock(s).c_str(), stdout);
}

}  // namespace

int ListJobsCommand(const std::shared_ptr<grpc::Channel>& channel) {
  auto stub = v1::JobService::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + kCallTimeout);
  v1::ListJobsResponse response;
  grpc::Status status =
      stub->ListJobs(&context, v1::ListJobsRequest(), &response);
  if (!status.ok()) return ReportError(status);
  std::printf("%-16s %-10s %15s %10s %10s %10s  %s\n", "JOB", "STATE",
              "DONE/TOTAL", "OK", "FAILED", "ELAPSED", "OWNER");
  for (const v1::JobStatus& s : response.jobs()) {
    std::string progress = absl::StrFormat("%d/%d", s.done(), s.total());
    std::printf("%-16s %-10s %15s %10llu %10llu %9.1fs  %s\n",
                s.job_id().c_str(), JobStateName(s.state()), progress.c_str(),
                static_cast<unsigned long long>(s.ok()),
                static_cast<unsigned long long>(s.failed()), s.elapsed_s(),
                s.owner().c_str());
  }
  if (!response.jobs().empty() && !response.jobs(0).store_error().empty()) {
    std::printf(
        "\nthe job store cannot write (%s): no job makes progress until it "
        "can\n",
        response.jobs(0).store_error().c_str());
  }
  return kExitOk;
}

namespace {

// JobCommand calls one of JobService's per-job methods and prints the job's
// status.
using JobMethod = grpc::Status (v1::JobService::Stub::*)(grpc::ClientContext*,
                                                         const v1::JobRef&,
                                                         v1::JobStatus*);

int JobCommand(const std::shared_ptr<grpc::Channel>& channel,
               const std::string& job_id, JobMethod method,
               bool stats_json = false) {
  auto stub = v1::JobService::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + kCallTimeout);
  v1::JobRef ref;
  ref.set_job_id(job_id);
  v1::JobStatus response;
  grpc::Status status = ((*stub).*method)(&context, ref, &response);
  if (!status.ok()) return ReportError(status);
  if (stats_json) {
    std::printf("%s\n", StatsJson(response).c_str());
  } else {
    PrintStatus(response);
  }
  return kExitOk;
}

}  // namespace

int StatusCommand(const std::shared_ptr<grpc::Channel>& channel,
                  const std::string& job_id, bool stats_json) {
  return JobCommand(channel, job_id, &v1::JobService::Stub::GetJob, stats_json);
}

int CancelCommand(const std::shared_ptr<grpc::Channel>& channel,
                  const std::string& job_id) {
  return JobCommand(channel, job_id, &v1::JobService::Stub::CancelJob);
}

int WorkersCommand(const std::shared_ptr<grpc::Channel>& channel) {
  auto stub = v1::AdminService::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + kCallTimeout);
  v1::ListWorkersResponse response;
  grpc::Status status =
      stub->ListWorkers(&context, v1::ListWorkersRequest(), &response);
  if (!status.ok()) return ReportError(status);
  int64_t now_ms = absl::ToUnixMillis(absl::Now());
  std::printf("%-24s %10s %10s %16s %s\n", "NAME", "IN-FLIGHT", "DONE",
              "LAST HEARTBEAT", "PEER");
  for (const v1::WorkerInfo& w : response.workers()) {
    std::string beat = absl::StrFormat(
        "%.1fs ago%s", (now_ms - w.last_heartbeat_unix_ms()) / 1000.0,
        w.draining() ? " (draining)" : "");
    std::printf("%-24s %10llu %10llu %16s %s\n", w.name().c_str(),
                static_cast<unsigned long long>(w.in_flight()),
                static_cast<unsigned long long>(w.done()), beat.c_str(),
                w.peer().c_str());
    // Outlier ejection: why the coordinator deals this worker no work.
    if (w.ejected()) {
      std::printf(
          "  ejected for %.0fs more: %s\n",
          std::max<int64_t>(w.ejected_until_unix_ms() - now_ms, 0) / 1000.0,
          w.ejected_reason().c_str());
    } else if (!w.ejected_reason().empty()) {
      std::printf("  %s\n", w.ejected_reason().c_str());
    }
  }
  return kExitOk;
}

absl::StatusOr<std::map<std::string, RateLimit>> ParseRateFlags(
    const std::vector<std::string>& rates,
    const std::vector<std::string>& bursts) {
  std::map<std::string, RateLimit> limits;
  for (const std::string& flag : rates) {
    size_t eq = flag.rfind('=');
    if (eq == std::string::npos || eq == 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--rate \"", flag, "\" is not KEY=RATE (e.g. api.example=10/s)"));
    }
    if (absl::Status key = CheckRateKey(flag.substr(0, eq)); !key.ok())
      return absl::InvalidArgumentError(
          absl::StrCat("--rate: ", key.message()));
    auto rate = ParseRate(flag.substr(eq + 1));
    if (!rate.ok())
      return absl::InvalidArgumentError(
          absl::StrCat("--rate: ", rate.status().message()));
    if (limits.count(flag.substr(0, eq)) > 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("--rate: ", flag.substr(0, eq), " is given twice"));
    }
    limits[flag.substr(0, eq)].per_second = *rate;
  }
  for (const std::string& flag : bursts) {
    size_t eq = flag.rfind('=');
    int64_t burst = 0;
    if (eq == std::string::npos || eq == 0 ||
        !absl::SimpleAtoi(flag.substr(eq + 1), &burst) || burst < 1 ||
        burst > kMaxBurst) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--burst \"", flag, "\" is not KEY=N with N from 1 to ", kMaxBurst));
    }
    auto it = limits.find(flag.substr(0, eq));
    if (it == limits.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--burst ", flag, " needs a --rate for the same key"));
    }
    it->second.burst = burst;
  }
  return limits;
}

absl::Status SetLimits(const std::shared_ptr<grpc::Channel>& channel,
                       const std::map<std::string, RateLimit>& limits) {
  auto stub = v1::AdminService::NewStub(channel);
  for (const auto& [key, limit] : limits) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + kCallTimeout);
    v1::SetLimitRequest request;
    request.set_key(key);
    request.set_per_second(limit.per_second);
    request.set_burst(limit.burst);
    v1::KeyLimit response;
    grpc::Status status = stub->SetLimit(&context, request, &response);
    if (!status.ok()) {
      // The code is kept: it decides the exit status.
      return absl::Status(FromGrpcStatus(status).code(),
                          absl::StrCat("setting the limit for ", key, ": ",
                                       status.error_message()));
    }
  }
  return absl::OkStatus();
}

int LimitsCommand(const std::shared_ptr<grpc::Channel>& channel,
                  const std::vector<std::string>& args, int64_t burst) {
  auto usage = [] {
    std::fprintf(stderr,
                 "usage: fetchctl limits list | set KEY RATE [--burst N] | "
                 "delete KEY\n");
    return kExitUsage;
  };
  if (args.empty()) return usage();
  auto stub = v1::AdminService::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + kCallTimeout);
  const std::string& verb = args[0];
  if (verb == "list" && args.size() == 1) {
    v1::LimitTable table;
    grpc::Status status =
        stub->ListLimits(&context, v1::ListLimitsRequest(), &table);
    if (!status.ok()) return ReportError(status);
    std::printf("%-32s %12s %8s %14s %8s %10s\n", "KEY", "RATE", "BURST",
                "ACHIEVED/S", "WAITING", "PAUSED");
    for (const v1::KeyLimit& entry : table.limits()) {
      std::string paused =
          entry.paused_ms() > 0
              ? absl::StrFormat("%.1fs", entry.paused_ms() / 1000.0)
              : "-";
      std::printf(
          "%-32s %12s %8lld %14.2f %8llu %10s\n", entry.key().c_str(),
          entry.per_second() > 0 ? FormatRate(entry.per_second()).c_str()
                                 : "none",
          static_cast<long long>(entry.burst()), entry.achieved_per_second(),
          static_cast<unsigned long long>(entry.waiting()), paused.c_str());
    }
    return kExitOk;
  }
  if ((verb == "set" && args.size() == 3) ||
      (verb == "delete" && args.size() == 2)) {
    if (absl::Status key = CheckRateKey(args[1]); !key.ok()) {
      std::fprintf(stderr, "error: %s\n", std::string(key.message()).c_str());
      return kExitUsage;
    }
  }
  if (verb == "set" && args.size() == 3) {
    auto rate = ParseRate(args[2]);
    if (!rate.ok()) {
      std::fprintf(stderr, "error: %s\n",
                   std::string(rate.status().message()).c_str());
      return kExitUsage;
    }
    if (absl::Status valid = CheckRateLimit({*rate, burst}); !valid.ok()) {
      std::fprintf(stderr, "error: --burst: %s\n",
                   std::string(valid.message()).c_str());
      return kExitUsage;
    }
    absl::Status status =
        SetLimits(channel, {{args[1], RateLimit{*rate, burst}}});
    if (!status.ok()) return ReportError(status);
    std::printf("%s: %s, burst %lld\n", args[1].c_str(),
                FormatRate(*rate).c_str(), static_cast<long long>(burst));
    return kExitOk;
  }
  if (verb == "delete" && args.size() == 2) {
    v1::DeleteLimitRequest request;
    request.set_key(args[1]);
    v1::KeyLimit response;
    grpc::Status status = stub->DeleteLimit(&context, request, &response);
    if (!status.ok()) return ReportError(status);
    std::printf("%s: limit deleted\n", args[1].c_str());
    return kExitOk;
  }
  return usage();
}

}  // namespace fetchfleet::fetchctl
