// fetchfleet-coordinator: parses flags, starts a CoordinatorServer, waits for
// SIGTERM/SIGINT.
#include <signal.h>
#include <unistd.h>

#include <cstdio>

#include "absl/strings/str_cat.h"
#include "common/flags.h"
#include "common/logging.h"
#include "common/redis_client.h"
#include "common/server_main.h"
#include "common/tracing.h"
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
               "gRPC listen address (port 0 picks a free port); an address "
               "that is not loopback needs TLS and authentication, or "
               "--insecure");
  flags.String("tls-cert", &options.tls.cert_file,
               "serve TLS with this certificate chain (PEM; re-read on "
               "change)");
  flags.String("tls-key", &options.tls.key_file,
               "the certificate's private key (PEM; re-read on change)");
  flags.Duration("tls-refresh", &options.tls.refresh,
                 "how often the certificate and key files are re-read");
  flags.String("auth-file", &options.auth.auth_file,
               "tokens (SHA-256 hashes) and client-certificate identities "
               "with their roles, one per line (re-read on change)");
  flags.String("worker-ca", &options.auth.worker_ca,
               "CA bundle of workers' client certificates (mTLS): only "
               "workers with one may connect");
  flags.String("client-ca", &options.auth.client_ca,
               "CA bundle of other clients' certificates; their identities "
               "get the roles --auth-file gives them");
  flags.Bool("insecure", &options.insecure,
             "serve a non-loopback address without TLS or authentication "
             "(anyone who reaches it controls the fleet)");
  flags.Int("user-max-jobs", &options.scheduler.user_limits.jobs,
            "jobs one identity may have running at once (0 = no limit)");
  flags.Int("user-max-requests-per-hour",
            &options.scheduler.user_limits.requests_per_hour,
            "requests one identity may submit in a sliding hour (0 = no "
            "limit)");
  flags.Int("user-max-in-flight", &options.scheduler.user_limits.in_flight,
            "requests of one identity's jobs leased to workers at once; "
            "beyond it its jobs wait (0 = no limit)");
  flags.Int("user-max-aggregates", &options.scheduler.user_limits.aggregates,
            "Aggregate calls one identity may have running at once (0 = no "
            "limit)");
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
  flags.String("metrics-listen", &options.metrics_listen,
               "serve /metrics, /healthz and /readyz over plain HTTP on "
               "HOST:PORT (empty: off)");
  flags.String("data-dir", &options.data_dir,
               "keep jobs in DIR/jobs.sqlite, so that a restart (or a crash) "
               "loses no job and no result (empty: jobs live in memory)");
  std::string store_sync = "full";
  flags.String("store-sync", &store_sync,
               "full: fsync each commit (survives a power loss); normal: "
               "survives a crash of the coordinator, not of the machine");
  flags.Duration("store-commit-interval", &options.store_commit_interval,
                 "with --data-dir: the least time between two commits of the "
                 "job store (results reach clients once committed: longer "
                 "costs less CPU per request and adds latency)");
  int64_t store_max_mb = 0;
  flags.Int("store-max-mb", &store_max_mb,
            "the job store may not grow past this many MiB; when full, no "
            "input is taken and no result delivered until it has room (0: "
            "until the disk is full)");
  flags.Duration("input-resume-timeout",
                 &options.scheduler.input_resume_timeout,
                 "with --data-dir: how long a job whose client went away "
                 "mid-upload waits for it to resume before its input ends");
  int64_t spool_max_results = 1 << 20;
  flags.Int("spool-max-results", &spool_max_results,
            "the most results a job may ask to keep waiting for a client "
            "(fetchctl submit --spool-results)");
  int64_t spool_max_mb = 1024;
  flags.Int("spool-max-mb", &spool_max_mb,
            "the most result body MiB a job may ask to keep waiting for a "
            "client (fetchctl submit --spool-mb)");
  std::string redis;
  flags.String("redis", &redis,
               "keep rate limits in Redis, "
               "redis://[[user]:password@]host:port[/db] (user: a Redis 6+ "
               "ACL user; percent-encode @ and : in the password; unset: in "
               "this process)");
  TracingOptions tracing;
  AddTracingFlags(&flags, &tracing);
  if (auto exit_code = ParseServerFlags(&flags, argc, argv, "coordinator"))
    return *exit_code;

  if (!ParseRedisFlag(redis, &options.redis)) return 2;
  if (store_sync != "full" && store_sync != "normal") {
    std::fprintf(stderr, "--store-sync: full or normal, not %s\n",
                 store_sync.c_str());
    return 2;
  }
  if (store_max_mb < 0 || spool_max_results < 1 || spool_max_mb < 1) {
    std::fprintf(stderr,
                 "--store-max-mb, --spool-max-results, --spool-max-mb: "
                 "positive numbers (--store-max-mb may be 0)\n");
    return 2;
  }
  options.store_sync_full = store_sync == "full";
  options.store_max_bytes = static_cast<uint64_t>(store_max_mb) << 20;
  options.scheduler.spool_max_results =
      static_cast<uint64_t>(spool_max_results);
  options.scheduler.spool_max_bytes = static_cast<uint64_t>(spool_max_mb) << 20;
  // Tracing: job and Aggregate spans go out through one exporter thread.
  auto exporter = StartExporter(tracing, "fetchfleet-coordinator",
                                absl::StrCat("coordinator-", getpid()));
  if (!exporter.ok()) {
    std::fprintf(stderr, "%s\n",
                 std::string(exporter.status().message()).c_str());
    return 2;
  }
  options.scheduler.tracing.exporter = exporter->get();
  options.scheduler.tracing.sample_ratio = tracing.sample_ratio;
  auto server = coordinator::CoordinatorServer::Start(options);
  if (!server.ok()) {
    FF_LOG(ERROR) << server.status().message();
    return 1;
  }
  std::string host = options.listen.substr(0, options.listen.rfind(':'));
  // "listening on HOST:PORT" ends the line: scripts and tests read the port.
  FF_LOG(INFO) << (options.tls.enabled() ? "TLS" : "plaintext") << ", "
               << (options.auth.configured() ? "authenticated"
                                             : "no authentication")
               << "; listening on " << host << ":" << (*server)->port();
  if (!options.metrics_listen.empty()) {
    // The port ends the line: scripts and tests read it.
    FF_LOG(INFO) << "metrics, /healthz and /readyz on "
                 << options.metrics_listen.substr(
                        0, options.metrics_listen.rfind(':'))
                 << ":" << (*server)->metrics_port();
  }
  if (options.insecure && !options.auth.configured()) {
    FF_LOG(WARNING) << "--insecure: this coordinator serves " << host
                    << " without authentication. Anyone who reaches the port "
                       "can submit and cancel jobs, read results, change "
                       "limits and register as a worker.";
  } else if (options.insecure && !options.tls.enabled()) {
    FF_LOG(WARNING) << "--insecure: this coordinator serves " << host
                    << " without TLS. Tokens, requests (their headers too) "
                       "and results cross the network in the clear, where "
                       "anyone on the path can read them and replay tokens.";
  }

  int signal_number = 0;
  sigwait(&signals, &signal_number);
  FF_LOG(INFO) << "signal " << signal_number << ": shutting down (grace "
               << absl::FormatDuration(shutdown_grace) << ")";
  (*server)->Shutdown(shutdown_grace);
  if (*exporter != nullptr) (*exporter)->Shutdown(absl::Seconds(5));
  FF_LOG(INFO) << "stopped";
  return 0;
}
