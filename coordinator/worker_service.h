// WorkerServiceImpl: the worker-facing gRPC service. Each worker holds one bidi
// stream; its reactor is the scheduler's WorkerChannel for that worker.
// Messages from the worker are handed to the loop one at a time (the next read
// starts after the loop took the last one), and messages to it are queued on
// the loop and written one at a time; that queue is bounded by the worker's
// credit.
//
// Thread-safe (gRPC calls in from its own threads).
#pragma once

#include "common/event_loop.h"
#include "coordinator/authenticator.h"
#include "coordinator/breaker_registry.h"
#include "coordinator/limit_registry.h"
#include "coordinator/scheduler.h"
#include "proto/fetchfleet.grpc.pb.h"

namespace fetchfleet::coordinator {

class WorkerServiceImpl final : public v1::WorkerService::CallbackService {
 public:
  WorkerServiceImpl(EventLoop* loop, Scheduler* scheduler, Authenticator* auth)
      : loop_(loop), scheduler_(scheduler), auth_(auth) {}

  grpc::ServerBidiReactor<v1::WorkerMessage, v1::CoordinatorMessage>* Connect(
      grpc::CallbackServerContext* context) override;

 private:
  EventLoop* const loop_;
  Scheduler* const scheduler_;
  Authenticator* const auth_;
};

class AdminServiceImpl final : public v1::AdminService::CallbackService {
 public:
  AdminServiceImpl(EventLoop* loop, Scheduler* scheduler, LimitRegistry* limits,
                   BreakerRegistry* breakers, Authenticator* auth)
      : loop_(loop),
        scheduler_(scheduler),
        limits_(limits),
        breakers_(breakers),
        auth_(auth) {}

  grpc::ServerUnaryReactor* ListWorkers(
      grpc::CallbackServerContext* context,
      const v1::ListWorkersRequest* request,
      v1::ListWorkersResponse* response) override;
  grpc::ServerUnaryReactor* ListLimits(grpc::CallbackServerContext* context,
                                       const v1::ListLimitsRequest* request,
                                       v1::LimitTable* response) override;
  grpc::ServerUnaryReactor* SetLimit(grpc::CallbackServerContext* context,
                                     const v1::SetLimitRequest* request,
                                     v1::KeyLimit* response) override;
  grpc::ServerUnaryReactor* DeleteLimit(grpc::CallbackServerContext* context,
                                        const v1::DeleteLimitRequest* request,
                                        v1::KeyLimit* response) override;
  grpc::ServerUnaryReactor* ListBreakers(
      grpc::CallbackServerContext* context,
      const v1::ListBreakersRequest* request,
      v1::ListBreakersResponse* response) override;
  grpc::ServerUnaryReactor* SetBreaker(grpc::CallbackServerContext* context,
                                       const v1::SetBreakerRequest* request,
                                       v1::BreakerInfo* response) override;
  grpc::ServerUnaryReactor* ResetBreaker(grpc::CallbackServerContext* context,
                                         const v1::BreakerRef* request,
                                         v1::BreakerInfo* response) override;

 private:
  EventLoop* const loop_;
  Scheduler* const scheduler_;
  LimitRegistry* const limits_;
  BreakerRegistry* const breakers_;
  Authenticator* const auth_;
};

}  // namespace fetchfleet::coordinator
