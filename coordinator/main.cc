// fetchfleet-coordinator: parses flags, starts a CoordinatorServer, waits for
// SIGTERM/SIGINT.
#include <signal.h>

#include <cstdio>

#include "absl/strings/str_cat.h"
#include "common/flags.h"
#include "common/logging.h"
#include "coordinator/coordinator_server.h"

int main(int argc, char** argv) {
  using namespace fetchfleet;
  // Signals are taken by sigwait below, on this thread only.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  coordinator::CoordinatorOptions options;
  std::string log_level = "info";
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
  flags.Duration("shutdown-grace", &shutdown_grace,
                 "on SIGTERM, how long open streams may finish");
  flags.String("log-level", &log_level, "debug, info, warning or error");
  auto args = flags.Parse(argc, argv);
  if (!args.ok()) {
    bool help = absl::IsNotFound(args.status());
    std::fprintf(help ? stdout : stderr, "%s\n",
                 std::string(args.status().message()).c_str());
    return help ? 0 : 2;
  }
  if (!args->empty()) {
    std::fprintf(stderr, "unexpected argument \"%s\"\n%s\n", (*args)[0].c_str(),
                 flags.Usage().c_str());
    return 2;
  }
  LogLevel level;
  if (!ParseLogLevel(log_level, &level)) {
    std::fprintf(stderr,
                 "--log-level: \"%s\" is not debug, info, warning or error\n",
                 log_level.c_str());
    return 2;
  }
  SetLogLevel(level);
  SetLogComponent("coordinator");

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
