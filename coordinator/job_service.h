// JobServiceImpl: the client-facing gRPC service (Submit, Watch, GetJob,
// ListJobs, CancelJob) on gRPC's callback API. Reactions never block: they
// parse what they received (on gRPC's thread), post it to the coordinator's
// loop, and return. All job state is the Scheduler's, on the loop.
//
// Thread-safe (gRPC calls in from its own threads).
#pragma once

#include "common/event_loop.h"
#include "coordinator/access_policy.h"
#include "coordinator/authenticator.h"
#include "coordinator/scheduler.h"
#include "proto/fetchfleet.grpc.pb.h"

namespace fetchfleet::coordinator {

class JobServiceImpl final : public v1::JobService::CallbackService {
 public:
  JobServiceImpl(EventLoop* loop, Scheduler* scheduler, Authenticator* auth)
      : loop_(loop), scheduler_(scheduler), auth_(auth) {}

  grpc::ServerBidiReactor<v1::SubmitRequest, v1::JobEvent>* Submit(
      grpc::CallbackServerContext* context) override;
  grpc::ServerWriteReactor<v1::JobEvent>* Watch(
      grpc::CallbackServerContext* context,
      const v1::WatchRequest* request) override;
  grpc::ServerUnaryReactor* GetJob(grpc::CallbackServerContext* context,
                                   const v1::JobRef* request,
                                   v1::JobStatus* response) override;
  grpc::ServerUnaryReactor* ListJobs(grpc::CallbackServerContext* context,
                                     const v1::ListJobsRequest* request,
                                     v1::ListJobsResponse* response) override;
  grpc::ServerUnaryReactor* CancelJob(grpc::CallbackServerContext* context,
                                      const v1::JobRef* request,
                                      v1::JobStatus* response) override;

 private:
  EventLoop* const loop_;
  Scheduler* const scheduler_;
  Authenticator* const auth_;
};

// FindJobFor: job `job_id`, if `who` may make `rpc` on it (NOT_FOUND or
// PERMISSION_DENIED otherwise). Loop thread.
absl::StatusOr<Job*> FindJobFor(Scheduler* scheduler, const Principal& who,
                                Rpc rpc, absl::string_view job_id);

}  // namespace fetchfleet::coordinator
