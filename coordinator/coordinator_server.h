// CoordinatorServer: wires a coordinator together: one loop thread that owns
// the Scheduler, the four gRPC services on the callback API, the gRPC health
// service and server reflection (so grpcurl works), and the sweep timer.
// `fetchctl run` embeds one in-process.
//
// Thread-safe.
#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/event_loop.h"
#include "common/metrics_server.h"
#include "coordinator/coordinator_metrics.h"
#include "coordinator/gateway_service.h"
#include "coordinator/job_journal.h"
#include "coordinator/job_service.h"
#include "coordinator/job_store.h"
#include "coordinator/limit_registry.h"
#include "coordinator/scheduler.h"
#include "coordinator/server_security.h"
#include "coordinator/worker_service.h"

namespace fetchfleet::coordinator {

struct CoordinatorOptions {
  // Loopback by default: a coordinator on the network needs TLS and
  // authentication, or --insecure (server_security.h).
  std::string listen = "127.0.0.1:7070";  // "" = in-process only
  ServerTls tls;
  AuthOptions auth;
  bool insecure = false;
  SchedulerOptions scheduler;
  // Where rate limits are kept; none = in this process.
  std::optional<RedisUrl> redis;
  // Serve /metrics, /healthz and /readyz here (HOST:PORT); "" = off.
  std::string metrics_listen;
  // Keep jobs in a store here (DIR/jobs.sqlite), so they survive a restart;
  // "" = in memory only.
  std::string data_dir;
  bool store_sync_full = true;
  // Commits of the job store begin at most this often (DurableJobs).
  absl::Duration store_commit_interval = absl::Milliseconds(5);
  uint64_t store_max_bytes = 0;
};

class CoordinatorServer {
 public:
  // Start binds, starts serving and returns; the port is known when it returns.
  static absl::StatusOr<std::unique_ptr<CoordinatorServer>> Start(
      CoordinatorOptions options);
  ~CoordinatorServer();

  // The port actually bound (for a listen address with port 0).
  int port() const { return port_; }
  // The metrics server's port, 0 without --metrics-listen.
  int metrics_port() const {
    return metrics_server_ != nullptr ? metrics_server_->port() : 0;
  }
  // InProcessChannel is a channel to this server that needs no socket.
  std::shared_ptr<grpc::Channel> InProcessChannel();
  // Shutdown stops accepting calls, gives open streams `grace` to end, then
  // cancels them.
  void Shutdown(absl::Duration grace);

 private:
  CoordinatorServer(CoordinatorOptions options,
                    std::unique_ptr<Authenticator> auth);
  // OpenStore opens --data-dir's store and restores its jobs.
  absl::Status OpenStore();
  void ScheduleSweep();
  void ScheduleTlsCheck();
  // PublishReadiness runs on the loop twice a second: it stamps the loop's
  // heartbeat and whether Redis is connected, so Ready reads two atomics and
  // a probe never waits on the loop.
  void PublishReadiness();
  // Ready: serving and not shutting down, its loop running (a heartbeat in
  // the last 2 s), and Redis connected when configured.
  Readiness Ready() const;

  CoordinatorOptions options_;
  std::unique_ptr<Authenticator> auth_;
  TlsPairWatch tls_watch_;
  EventLoop loop_;
  // The job store (none without --data-dir); outlives the scheduler's jobs.
  std::unique_ptr<JobStore> store_;
  std::unique_ptr<DurableJobs> durable_;
  Scheduler scheduler_;
  CoordinatorMetrics metrics_;
  LimitRegistry limits_;
  BreakerRegistry breakers_;
  JobServiceImpl job_service_;
  WorkerServiceImpl worker_service_;
  AdminServiceImpl admin_service_;
  GatewayServiceImpl gateway_service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<MetricsServer> metrics_server_;
  std::atomic<bool> serving_{false};
  std::atomic<int64_t> loop_heartbeat_ns_{0};  // steady clock; 0: not yet
  std::atomic<bool> redis_connected_{false};
  std::thread loop_thread_;
  int port_ = 0;
  bool shut_down_ = false;
};

}  // namespace fetchfleet::coordinator
