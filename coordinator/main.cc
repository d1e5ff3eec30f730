// fetchfleet-coordinator: parses flags, starts a CoordinatorServer, waits for
// SIGTERM/SIGINT.
#include <signal.h>

#include <cstdio>

#include "absl/strings/str_cat.h"
#include "common/flags.h"
#include "common/logging.h"
#include "common/redis_client.h"
#include "common/server_main.h"
#include "coordinator/coordinator_server.h"

int main(int argc, char** argv) {
  using namespace fetchfleet;
  // Signals are taken by sigwait below, on this thread only.
  sigset_t signals = BlockTerminationSignals();

  coordinator::CoordinatorOptions options;
  absl::Duration shutdown_grace = absl::Seconds(10);
  FlagSet flags(
      "fetchfleet-coordinator: accepts jobs from fetchctl, shards them to "
      "workers over gRPC\n"
      "streams, leases the work and streams results back.\n\n"
      "usage: fetchfleet-coordinator [flags]",
      "FETCHFLEET_");
  flags.String("listen", &options.listen,
               "gRPC listen address (port 0 picks a free port)");
  flags.Duration("heartbeat-interval", &options.scheduler.heartbeat_interval,
                 "how often workers report in");
  flags.Duration(
      "worker-timeout", &options.scheduler.worker_timeout,
      "a worker silent this long is presumed dead; its work is re-queued");
  flags.Duration("lease-slack", &options.scheduler.lease_plan.slack,
                 "a lease lasts its request's attempt plan (timeouts, "
                 "backoff, slot and breaker waits) plus this");
  flags.Duration(
      "ejection-time", &options.scheduler.health.base_ejection,
      "how long a worker that stalls or fails alone is first kept "
      "out of dispatch (doubling per ejection, at most 5m; 0 = never)");
  flags.Duration("shutdown-grace", &shutdown_grace,
                 "on SIGTERM, how long open streams may finish");
  std::string redis;
  flags.String("redis", &redis,
               "keep rate limits in Redis, "
               "redis://[[user]:password@]host:port[/db] (user: a Redis 6+ "
               "ACL user; percent-encode @ and : in the password; unset: in "
               "this process)");
  if (auto exit_code = ParseServerFlags(&flags, argc, argv, "coordinator"))
    return *exit_code;

  if (!ParseRedisFlag(redis, &options.redis)) return 2;
  auto server = coordinator::CoordinatorServer::Start(options);
  if (!server.ok()) {
    FF_LOG(ERROR) << server.status().message();
    return 1;
  }
  std::string host = options.listen.substr(0, options.listen.rfind(':'));
  FF_LOG(INFO) << "listening on " << host << ":" << (*server)->port();

  int signal_number = 0;
  sigwait(&signals, &signal_number);
  FF_LOG(INFO) << "signal " << signal_number << ": shutting down (grace "
               << absl::FormatDuration(shutdown_grace) << ")";
  (*server)->Shutdown(shutdown_grace);
  FF_LOG(INFO) << "stopped";
  return 0;
}
