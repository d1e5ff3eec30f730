#include "fetchctl/admin_commands.h"

#include <cstdio>

#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "fetchctl/job_client.h"
#include "proto/fetchfleet.grpc.pb.h"

namespace fetchfleet::fetchctl {
namespace {

constexpr auto kCallTimeout = std::chrono::seconds(10);

const char* StateName(v1::JobState state) {
  switch (state) {
    case v1::JOB_RUNNING:
      return "running";
    case v1::JOB_DONE:
      return "done";
    case v1::JOB_CANCELLED:
      return "cancelled";
    default:
      return "unknown";
  }
}

int Fail(const grpc::Status& status) {
  std::fprintf(stderr, "error: %s\n", status.error_message().c_str());
  if (status.error_code() == grpc::StatusCode::UNAVAILABLE ||
      status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
    return kExitUnreachable;
  }
  if (status.error_code() == grpc::StatusCode::NOT_FOUND) return kExitUsage;
  return kExitSomeFailed;
}

void PrintStatus(const v1::JobStatus& s) {
  std::printf("job:        %s\n", s.job_id().c_str());
  std::printf("state:      %s\n", StateName(s.state()));
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
}

}  // namespace

int ListJobsCommand(const std::shared_ptr<grpc::Channel>& channel) {
  auto stub = v1::JobService::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + kCallTimeout);
  v1::ListJobsResponse response;
  grpc::Status status =
      stub->ListJobs(&context, v1::ListJobsRequest(), &response);
  if (!status.ok()) return Fail(status);
  std::printf("%-16s %-10s %15s %10s %10s %10s\n", "JOB", "STATE", "DONE/TOTAL",
              "OK", "FAILED", "ELAPSED");
  for (const v1::JobStatus& s : response.jobs()) {
    std::string progress = absl::StrFormat("%d/%d", s.done(), s.total());
    std::printf("%-16s %-10s %15s %10llu %10llu %9.1fs\n", s.job_id().c_str(),
                StateName(s.state()), progress.c_str(),
                static_cast<unsigned long long>(s.ok()),
                static_cast<unsigned long long>(s.failed()), s.elapsed_s());
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
               const std::string& job_id, JobMethod method) {
  auto stub = v1::JobService::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + kCallTimeout);
  v1::JobRef ref;
  ref.set_job_id(job_id);
  v1::JobStatus response;
  grpc::Status status = ((*stub).*method)(&context, ref, &response);
  if (!status.ok()) return Fail(status);
  PrintStatus(response);
  return kExitOk;
}

}  // namespace

int StatusCommand(const std::shared_ptr<grpc::Channel>& channel,
                  const std::string& job_id) {
  return JobCommand(channel, job_id, &v1::JobService::Stub::GetJob);
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
  if (!status.ok()) return Fail(status);
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
  }
  return kExitOk;
}

}  // namespace fetchfleet::fetchctl
