// EmbeddedFleet: the whole fleet in one process for `fetchctl run`: a
// coordinator with no listening socket and one worker on its own loop thread,
// joined by an in-process gRPC channel. Same code paths as the distributed
// fleet; state is in-process (no Redis).
//
// Thread-safe: construct, use channel(), destroy (which drains the worker).
#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>
#include <thread>

#include "absl/status/statusor.h"
#include "common/egress_policy.h"
#include "common/event_loop.h"
#include "common/rate_limiter.h"
#include "coordinator/coordinator_server.h"
#include "worker/worker.h"

namespace fetchfleet::fetchctl {

class EmbeddedFleet {
 public:
  static absl::StatusOr<std::unique_ptr<EmbeddedFleet>> Start(
      EgressPolicy policy, worker::WorkerOptions options);
  ~EmbeddedFleet();

  std::shared_ptr<grpc::Channel> channel() { return channel_; }

 private:
  EmbeddedFleet(EgressPolicy policy, worker::WorkerOptions options);

  EgressPolicy policy_;
  worker::WorkerOptions worker_options_;
  std::unique_ptr<coordinator::CoordinatorServer> coordinator_;
  std::shared_ptr<grpc::Channel> channel_;
  EventLoop worker_loop_;
  std::unique_ptr<worker::Worker> worker_;
  std::thread worker_thread_;
};

}  // namespace fetchfleet::fetchctl
