// GatewayServiceImpl: the Aggregate RPC. The call's parts become one
// interactive job (dispatched ahead of batch work, each part behind its key's
// breaker and rate limit); the call answers when every part has a result or
// at its deadline, whichever comes first, then forgets the job.
//
// Thread-safe (gRPC calls in from its own threads; the work is on the loop).
#pragma once

#include "common/event_loop.h"
#include "coordinator/authenticator.h"
#include "coordinator/coordinator_metrics.h"
#include "coordinator/scheduler.h"
#include "proto/fetchfleet.grpc.pb.h"

namespace fetchfleet::coordinator {

class GatewayServiceImpl final : public v1::GatewayService::CallbackService {
 public:
  // At most this many Aggregate calls run at once; more are refused with
  // RESOURCE_EXHAUSTED.
  static constexpr size_t kMaxConcurrentCalls = 10000;

  // `metrics` may be null.
  GatewayServiceImpl(EventLoop* loop, Scheduler* scheduler, Authenticator* auth,
                     CoordinatorMetrics* metrics = nullptr)
      : loop_(loop), scheduler_(scheduler), auth_(auth), metrics_(metrics) {}

  grpc::ServerUnaryReactor* Aggregate(grpc::CallbackServerContext* context,
                                      const v1::AggregateRequest* request,
                                      v1::AggregateResponse* response) override;

 private:
  EventLoop* const loop_;
  Scheduler* const scheduler_;
  Authenticator* const auth_;
  CoordinatorMetrics* const metrics_;
};

}  // namespace fetchfleet::coordinator
