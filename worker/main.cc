// fetchfleet-worker: parses flags, connects to the coordinator and fetches on
// an event loop until SIGTERM/SIGINT, then drains.
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <thread>

#include "common/client_credentials.h"
#include "common/egress_policy.h"
#include "common/flags.h"
#include "common/logging.h"
#include "common/metrics_server.h"
#include "common/rate_limiter.h"
#include "common/server_main.h"
#include "common/trace_metrics.h"
#include "common/tracing.h"
#include "common/wire_limits.h"
#include "worker/trace_observer.h"
#include "worker/worker.h"

namespace {

std::string Hostname() {
  char name[256] = {};
  if (gethostname(name, sizeof(name) - 1) != 0) return "worker";
  return name;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace fetchfleet;
  sigset_t signals = BlockTerminationSignals();

  worker::WorkerOptions options;
  options.name = Hostname();
  std::string coordinator = "localhost:7070";
  std::vector<std::string> allow_cidrs;
  int64_t max_host_connections =
      worker::CurlFetcher::kDefaultMaxHostConnections;
  FlagSet flags(
      "fetchfleet-worker: fetches the coordinator's assignments with libcurl "
      "on an event loop.\n\n"
      "usage: fetchfleet-worker [flags]",
      "FETCHFLEET_");
  flags.String("coordinator", &coordinator, "coordinator gRPC address");
  ClientSecurity security;
  AddClientSecurityFlags(&flags, &security);
  flags.Int("max-inflight", &options.max_inflight,
            "requests this worker holds at once");
  options.loops = std::max(1u, std::thread::hardware_concurrency());
  flags.Int(
      "loops", &options.loops,
      "fetch threads, each with its own event loop and libcurl multi handle");
  flags.String("name", &options.name,
               "worker name shown in results and `fetchctl workers`");
  flags.StringList("allow-cidr", &allow_cidrs,
                   "let the egress policy connect to this range (repeatable), "
                   "e.g. 127.0.0.0/8");
  flags.String("source-address", &options.fetcher.source_address,
               "connect to upstreams from this local IP address (a "
               "multi-homed host's egress address); unset: the system's "
               "choice");
  flags.Int("max-host-connections", &max_host_connections,
            "connections each fetch loop opens to one host:port (HTTP/1.1 "
            "takes one per request in flight; HTTP/2 multiplexes); further "
            "requests to it queue, within their timeouts");
  flags.Duration("drain-timeout", &options.drain_timeout,
                 "on SIGTERM, how long in-flight requests may take to finish");
  std::string redis;
  flags.String("redis", &redis,
               "fleet-wide rate limits in Redis, "
               "redis://[[user]:password@]host:port[/db] (user: a Redis 6+ "
               "ACL user; percent-encode @ and : in the password; unset: "
               "this worker keeps R / live workers in process)");
  std::string redis_failure = "closed";
  flags.String("redis-failure", &redis_failure,
               "while Redis is unreachable, limited keys: closed (wait for "
               "it) or local (each worker takes R / live workers)");
  flags.Duration("redis-timeout", &options.redis_timeout,
                 "a Redis call with no reply this long drops the connection");
  flags.Double("rate-headroom", &options.rate_headroom,
               "fraction of each rate limit left unspent, slack for network "
               "jitter at an upstream that enforces the same limit (0 to 0.5)");
  std::string metrics_listen;
  flags.String("metrics-listen", &metrics_listen,
               "serve /metrics, /healthz and /readyz over plain HTTP on "
               "HOST:PORT (empty: off)");
  TracingOptions tracing;
  AddTracingFlags(&flags, &tracing);
  if (auto exit_code = ParseServerFlags(&flags, argc, argv, "worker"))
    return *exit_code;
  if (options.loops < 1 || options.loops > 256) {
    std::fprintf(stderr, "--loops must be from 1 to 256\n");
    return 2;
  }
  // The coordinator grants no worker more credit than 65536.
  if (options.max_inflight < 1 || options.max_inflight > 65536) {
    std::fprintf(stderr, "--max-inflight must be from 1 to 65536\n");
    return 2;
  }
  if (max_host_connections < 1 || max_host_connections > 10000) {
    std::fprintf(stderr, "--max-host-connections must be from 1 to 10000\n");
    return 2;
  }
  options.fetcher.max_host_connections = max_host_connections;

  if (!(options.rate_headroom >= 0 && options.rate_headroom <= 0.5)) {
    std::fprintf(stderr, "--rate-headroom must be from 0 to 0.5\n");
    return 2;
  }
  if (!ParseRedisFlag(redis, &options.redis)) return 2;
  if (redis_failure == "closed") {
    options.redis_failure = worker::RedisFailureMode::kClosed;
  } else if (redis_failure == "local") {
    options.redis_failure = worker::RedisFailureMode::kLocal;
  } else {
    std::fprintf(stderr, "--redis-failure must be closed or local, not %s\n",
                 redis_failure.c_str());
    return 2;
  }

  if (!options.fetcher.source_address.empty() &&
      !Cidr::Parse(options.fetcher.source_address).ok()) {
    std::fprintf(stderr, "--source-address must be an IP address, not %s\n",
                 options.fetcher.source_address.c_str());
    return 2;
  }
  EgressPolicy policy;
  for (const std::string& text : allow_cidrs) {
    auto cidr = Cidr::Parse(text);
    if (!cidr.ok()) {
      std::fprintf(stderr, "--allow-cidr: %s\n",
                   std::string(cidr.status().message()).c_str());
      return 2;
    }
    policy.Allow(*cidr);
  }

  grpc::ChannelArguments channel_args;
  channel_args.SetMaxReceiveMessageSize(kMaxReceiveMessageBytes);
  channel_args.SetMaxSendMessageSize(kMaxReceiveMessageBytes);
  channel_args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 20000);
  channel_args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10000);
  auto channel = DialCoordinator(coordinator, security, channel_args);
  if (!channel.ok()) {
    std::fprintf(stderr, "error: %s\n",
                 std::string(channel.status().message()).c_str());
    return 2;
  }

  // Tracing: the worker's spans go out through one exporter thread.
  auto exporter = StartExporter(tracing, "fetchfleet-worker", options.name);
  if (!exporter.ok()) {
    std::fprintf(stderr, "%s\n",
                 std::string(exporter.status().message()).c_str());
    return 2;
  }
  // Telemetry hears every attempt through one observer list.
  worker::WorkerMetrics metrics;
  worker::FetchObservers observers;
  std::unique_ptr<MetricsServer> metrics_server;
  if (!metrics_listen.empty()) {
    observers.Add(&metrics);
    options.metrics = &metrics;
    std::vector<std::shared_ptr<prometheus::Collectable>> collectables = {
        metrics.registry()};
    if (*exporter != nullptr)
      collectables.push_back(TraceExporterMetrics(exporter->get()));
    auto started = MetricsServer::Start(metrics_listen, collectables,
                                        [&metrics] { return metrics.Ready(); });
    if (!started.ok()) {
      FF_LOG(ERROR) << started.status().message();
      return 1;
    }
    metrics_server = *std::move(started);
    // The port ends the line: scripts and tests read it.
    FF_LOG(INFO) << "metrics, /healthz and /readyz on "
                 << metrics_listen.substr(0, metrics_listen.rfind(':')) << ":"
                 << metrics_server->port();
  }
  std::unique_ptr<worker::TraceObserver> trace_observer;
  if (*exporter != nullptr) {
    trace_observer =
        std::make_unique<worker::TraceObserver>(exporter->get(), options.name);
    observers.Add(trace_observer.get());
    options.trace_root_ratio = tracing.sample_ratio;
  }
  if (!observers.empty()) options.observer = &observers;

  EventLoop loop;
  worker::Worker worker(&loop, *channel, &policy, options);
  loop.Post([&] { worker.Start(); });
  FF_LOG(INFO) << LogField(kLogWorker, options.name)
               << LogField("coordinator", coordinator) << "worker "
               << options.name << " connecting to " << coordinator
               << " (max in flight " << options.max_inflight << ", "
               << options.loops << " fetch loops, rate limits "
               << (options.redis ? "in " + options.redis->ToString()
                                 : std::string("in process"))
               << ")";

  std::thread signal_thread([&] {
    int signal_number = 0;
    sigwait(&signals, &signal_number);
    FF_LOG(INFO) << "signal " << signal_number << ": draining";
    loop.Post([&] { worker.Drain([&] { loop.Stop(); }); });
  });
  loop.Run();
  // The loop only stops after a drain, which only starts from the signal
  // thread.
  signal_thread.join();
  if (*exporter != nullptr) (*exporter)->Shutdown(absl::Seconds(5));
  return 0;
}
