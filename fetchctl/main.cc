// fetchctl: the fetchfleet command-line client. Parses the command and its
// flags, then hands off to job_client (submit, watch, run), admin_commands
// (jobs, status, cancel, workers), breaker_commands, aggregate_command, top
// (the live view) or embedded_fleet (run).
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/client_credentials.h"
#include "common/flags.h"
#include "common/logging.h"
#include "common/request_parser.h"
#include "common/trace_context.h"
#include "common/wire_limits.h"
#include "fetchctl/admin_commands.h"
#include "fetchctl/aggregate_command.h"
#include "fetchctl/breaker_commands.h"
#include "fetchctl/embedded_fleet.h"
#include "fetchctl/exit_codes.h"
#include "fetchctl/interrupt.h"
#include "fetchctl/job_client.h"
#include "fetchctl/top.h"

namespace fetchfleet::fetchctl {
namespace {

constexpr char kUsage[] =
    "fetchctl: the fetchfleet client.\n\n"
    "usage: fetchctl [--coordinator ADDR] COMMAND [flags] [args]\n\n"
    "commands:\n"
    "  submit [FILE|-]        submit a job list; stream its results as JSON "
    "Lines\n"
    "  watch JOB_ID           re-attach to a job's results (--from SEQ)\n"
    "  jobs                   list jobs\n"
    "  status JOB_ID          one job's progress and statistics "
    "(--stats-json)\n"
    "  cancel JOB_ID          cancel a job\n"
    "  workers                connected workers\n"
    "  top                    live view: workers, busiest rate keys, breakers, "
    "jobs\n"
    "  limits list            fleet-wide rate limits, achieved rates, pauses\n"
    "  limits set KEY RATE    set a limit (RATE like 10/s, 600/m; --burst N)\n"
    "  limits delete KEY      remove a limit\n"
    "  breakers list          shared circuit breakers: state, failure rate, "
    "next probe\n"
    "  breakers set KEY       change a key's breaker settings (see --help)\n"
    "  breakers reset KEY     close a breaker and clear its window\n"
    "  aggregate FILE         one fan-out call (gateway): prints the merged "
    "JSON\n"
    "  run [FILE|-]           the whole fleet in this process (no coordinator, "
    "no Redis)\n\n"
    "Run `fetchctl COMMAND --help` for a command's flags.\n\n"
    "A secured coordinator (README \"Security\"): --tls-ca FILE (or --tls for "
    "the\nsystem's roots), --tls-server-name NAME, and the token from "
    "--token-file FILE\nor env FETCHFLEET_TOKEN (never argv). Refused "
    "credentials exit 2.";

constexpr char kAggregateUsage[] =
    "usage: fetchctl aggregate [flags] FILE|-\n\n"
    "Sends one JSON document, prints the merged JSON on stdout and each failed "
    "part's\nerror on stderr:\n"
    "  {\"parts\": [{\"name\": \"user\", \"url\": \"...\", \"required\": "
    "true},\n"
    "             {\"name\": \"recs\", \"url\": \"...\", \"required\": false, "
    "\"fallback\": []}],\n"
    "   \"deadline_ms\": 800}\n"
    "Document fields: \"parts\" (1 to 64), \"deadline_ms\" (default 10000).\n"
    "Part fields: \"name\" (required, unique), \"url\" (required), "
    "\"method\", \"headers\",\n"
    "  \"body\", \"rate_key\", \"timeout_ms\", \"max_attempts\", "
    "\"required\" (default true),\n"
    "  \"fallback\" (any JSON, used when an optional part fails; default "
    "null).\n"
    "Exit status: 0 ok (optional parts may have fallen back), 1 a required "
    "part\nfailed, 2 bad input, 3 coordinator unreachable.";

// The bound of --concurrency (JobOptions.concurrency is 32 bits; beyond the
// fleet's size a cap means nothing).
constexpr int64_t kMaxConcurrency = 1000000;
// The bound of run's --max-inflight (the worker's own).
constexpr int64_t kMaxInflight = 100000;

struct JobFlags {
  int64_t max_attempts = kDefaultMaxAttempts;
  absl::Duration timeout = absl::Milliseconds(kDefaultTimeoutMs);
  int64_t concurrency = 0;
  std::string output;
  bool detach = false;
  bool no_progress = false;
  bool headers = false;
  int64_t max_body = kDefaultBodyCapBytes;
  std::vector<std::string> rates;
  std::vector<std::string> bursts;
  std::string on_open = "fail";
  std::string stats_json;
  std::string traceparent;
  std::string tracestate;
  bool trace = false;
  int64_t spool_results = 0;
  int64_t spool_mb = 0;
  absl::Duration reconnect_for = absl::Minutes(5);
};

void AddJobFlags(FlagSet* flags, JobFlags* job) {
  flags->Int("max-attempts", &job->max_attempts, "attempts per request (1-20)");
  flags->Duration("timeout", &job->timeout, "per-attempt timeout");
  flags->Int("concurrency", &job->concurrency,
             "the job's in-flight cap across the fleet (0 = none)");
  flags->String("output", &job->output,
                "write results to this file instead of stdout");
  flags->Bool("no-progress", &job->no_progress, "no progress bar");
  flags->Bool("headers", &job->headers, "include response headers in results");
  flags->Int("max-body", &job->max_body,
             "body bytes kept per result; longer ones are truncated");
  flags->StringList("rate", &job->rates,
                    "KEY=RATE: set the fleet-wide limit for a rate key before "
                    "the job starts, e.g. api.example=10/s (repeatable)");
  flags->StringList("burst", &job->bursts,
                    "KEY=N: the burst for a --rate key (default 1)");
  flags->String("stats-json", &job->stats_json,
                "when the job ends, write its statistics to this file as one "
                "JSON object");
  flags->String("on-open", &job->on_open,
                "what a request does at an open circuit breaker: fail "
                "(circuit_open at once) or wait (up to its attempts' time)");
  flags->String("traceparent", &job->traceparent,
                "W3C traceparent the job's span is a child of (its requests "
                "and their upstreams carry the trace)");
  flags->String("tracestate", &job->tracestate,
                "W3C tracestate sent with --traceparent or --trace");
  flags->Bool("trace", &job->trace,
              "start a new sampled trace for the job and print its trace id "
              "on stderr");
}

absl::StatusOr<v1::JobOptions> ToJobOptions(const JobFlags& job) {
  if (job.max_attempts < 1 || job.max_attempts > kMaxAttemptsLimit) {
    return absl::InvalidArgumentError(
        absl::StrCat("--max-attempts must be from 1 to ", kMaxAttemptsLimit));
  }
  int64_t timeout_ms = absl::ToInt64Milliseconds(job.timeout);
  if (timeout_ms < 1 || timeout_ms > kMaxTimeoutMs) {
    return absl::InvalidArgumentError("--timeout must be from 1ms to 10m");
  }
  if (job.concurrency < 0 || job.concurrency > kMaxConcurrency) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--concurrency must be from 0 (no cap) to ", kMaxConcurrency));
  }
  // The fleet's own bound (a worker buffers a body whole).
  if (job.max_body < 1 ||
      static_cast<uint64_t>(job.max_body) > kMaxBodyCapBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("--max-body must be from 1 to ", kMaxBodyCapBytes));
  }
  if (job.on_open != "fail" && job.on_open != "wait")
    return absl::InvalidArgumentError("--on-open must be fail or wait");
  v1::JobOptions options;
  options.set_on_open(job.on_open == "wait" ? v1::ON_OPEN_WAIT
                                            : v1::ON_OPEN_FAIL);
  options.set_max_attempts(job.max_attempts);
  options.set_timeout_ms(timeout_ms);
  options.set_concurrency(job.concurrency);
  if (job.spool_results < 0 || job.spool_mb < 0)
    return absl::InvalidArgumentError(
        "--spool-results and --spool-mb must be 0 or more");
  options.set_spool_results(static_cast<uint64_t>(job.spool_results));
  options.set_spool_bytes(static_cast<uint64_t>(job.spool_mb) << 20);
  options.set_include_headers(job.headers);
  options.set_body_cap_bytes(job.max_body);
  if (job.trace && !job.traceparent.empty())
    return absl::InvalidArgumentError(
        "--trace and --traceparent exclude each other");
  if (!job.tracestate.empty() && !job.trace && job.traceparent.empty())
    return absl::InvalidArgumentError(
        "--tracestate needs --traceparent or --trace");
  std::string traceparent = job.traceparent;
  if (job.trace)
    traceparent = FormatTraceparent(NewRootContext(/*sampled=*/true));
  if (!traceparent.empty()) {
    absl::StatusOr<TraceContext> context =
        ParseTraceparent(traceparent, job.tracestate);
    if (!context.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--", context.status().message()));
    }
    options.set_traceparent(traceparent);
    options.set_tracestate(job.tracestate);
  }
  return options;
}

absl::StatusOr<std::shared_ptr<grpc::Channel>> Dial(
    const std::string& address, const ClientSecurity& security) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(kMaxReceiveMessageBytes);
  args.SetMaxSendMessageSize(kMaxReceiveMessageBytes);
  return DialCoordinator(address, security, args);
}

// Usage prints a usage line (or text) on stderr; UsageError an error.
int Usage(const std::string& message) {
  std::fprintf(stderr, "%s\n", message.c_str());
  return kExitUsage;
}

int UsageError(const std::string& message) {
  std::fprintf(stderr, "error: %s\n", message.c_str());
  return kExitUsage;
}

int Main(int argc, char** argv) {
  // Find the command: the first argument that is not a global flag or its
  // value.
  std::string coordinator = "localhost:7070";
  if (const char* env = std::getenv("FETCHFLEET_COORDINATOR"); env && *env)
    coordinator = env;
  int i = 1;
  for (; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--coordinator" && i + 1 < argc) {
      coordinator = argv[++i];
    } else if (arg.rfind("--coordinator=", 0) == 0) {
      coordinator = arg.substr(strlen("--coordinator="));
    } else if (arg == "-h" || arg == "--help") {
      std::printf("%s\n", kUsage);
      return kExitOk;
    } else {
      break;
    }
  }
  if (i >= argc) return Usage(kUsage);
  std::string command = argv[i];

  JobFlags job;
  uint64_t from_seq = 1;
  int64_t from_flag = 1;
  std::vector<std::string> allow_cidrs;
  int64_t max_inflight = 512;
  int64_t burst = 1;
  BreakerFlags breaker_flags;
  TopOptions top;
  bool stats_json = false;
  std::string log_format = "text";
  FlagSet flags(
      command == "aggregate"
          ? std::string(kAggregateUsage)
          : absl::StrCat("usage: fetchctl ", command, " [flags] [args]"),
      "");
  // run is the fleet in this process: it has no coordinator.
  ClientSecurity security;
  if (command != "run") {
    flags.String("coordinator", &coordinator,
                 "coordinator address (env FETCHFLEET_COORDINATOR)");
    AddClientSecurityFlags(&flags, &security);
  }
  if (command == "submit" || command == "run") {
    AddJobFlags(&flags, &job);
    if (command == "submit") {
      flags.Bool("detach", &job.detach,
                 "print the job id once the input is in, then return");
      flags.Int("spool-results", &job.spool_results,
                "results that may wait on the coordinator for a client "
                "before the job pauses (0: the coordinator's default)");
      flags.Int("spool-mb", &job.spool_mb,
                "and their body MiB (0: the coordinator's default)");
      flags.Duration("reconnect-for", &job.reconnect_for,
                     "when the stream to a coordinator that keeps jobs "
                     "(--data-dir) breaks, reconnect and resume for this "
                     "long (0: never)");
    } else {
      flags.StringList(
          "allow-cidr", &allow_cidrs,
          "let the embedded worker connect to this range (repeatable)");
      flags.Int("max-inflight", &max_inflight,
                "requests the embedded worker holds at once (1-100000)");
      flags.String("log-format", &log_format,
                   "the embedded fleet's warnings on stderr: text, json or "
                   "auto");
    }
  } else if (command == "watch") {
    flags.Int("from", &from_flag, "first result seq to print");
    flags.Duration("reconnect-for", &job.reconnect_for,
                   "when the stream to a coordinator that keeps jobs "
                   "(--data-dir) breaks, reconnect and resume for this long "
                   "(0: never)");
    flags.String("output", &job.output,
                 "write results to this file instead of stdout");
    flags.Bool("no-progress", &job.no_progress, "no progress bar");
    flags.String("stats-json", &job.stats_json,
                 "when the job ends, write its statistics to this file as "
                 "one JSON object");
  } else if (command == "status") {
    flags.Bool("stats-json", &stats_json,
               "print the job's statistics as one JSON object instead");
  } else if (command == "limits") {
    flags.Int("burst", &burst,
              "limits set: how many may start at once (1-1000000)");
  } else if (command == "breakers") {
    breaker_flags.Register(&flags);
  } else if (command == "top") {
    flags.Duration("interval", &top.interval,
                   "time between refreshes (100ms to 1m)");
  } else if (command == "aggregate") {
    flags.String("traceparent", &job.traceparent,
                 "W3C traceparent the call's span is a child of");
    flags.String("tracestate", &job.tracestate,
                 "W3C tracestate sent with --traceparent");
  } else if (command != "jobs" && command != "status" && command != "cancel" &&
             command != "workers" && command != "aggregate") {
    return UsageError(
        absl::StrCat("unknown command \"", command, "\"\n\n", kUsage));
  }
  auto args = flags.Parse(argc, argv, i + 1);
  if (!args.ok()) {
    if (absl::IsNotFound(args.status())) {
      std::printf("%s\n", std::string(args.status().message()).c_str());
      return kExitOk;
    }
    return UsageError(std::string(args.status().message()));
  }
  if (from_flag < 1) return UsageError("--from must be a seq from 1");
  if (top.interval < kMinTopInterval || top.interval > kMaxTopInterval)
    return UsageError("--interval must be from 100ms to 1m");
  from_seq = static_cast<uint64_t>(from_flag);

  auto need_args = [&](size_t n, const char* what) -> bool {
    if (args->size() != n) {
      std::fprintf(stderr, "usage: fetchctl %s %s\n", command.c_str(), what);
      return false;
    }
    return true;
  };

  OutputOptions output;
  output.output_path = job.output;
  output.detach = job.detach;
  output.progress = !job.no_progress && ::isatty(STDERR_FILENO);
  output.coordinator = coordinator;
  output.embedded = command == "run";
  output.stats_json_path = job.stats_json;
  output.reconnect_for = job.reconnect_for;
  if (!job.stats_json.empty()) {
    if (job.detach)
      return UsageError(
          "--stats-json does not go with --detach (the job "
          "ends after fetchctl returns)");
    // A path that cannot be written is refused before the job starts, not
    // found out at its end.
    FILE* probe = std::fopen(job.stats_json.c_str(), "wb");
    if (probe == nullptr) {
      return UsageError(absl::StrCat("--stats-json: cannot write ",
                                     job.stats_json, ": ",
                                     std::strerror(errno)));
    }
    std::fclose(probe);
  }

  // submit and run read the same job list with the same options.
  v1::JobOptions job_options;
  std::unique_ptr<InputReader> input;
  std::map<std::string, RateLimit> limits;
  if (command == "submit" || command == "run") {
    if (args->size() > 1)
      return Usage(absl::StrCat("usage: fetchctl ", command, " [FILE|-]"));
    auto options = ToJobOptions(job);
    if (!options.ok())
      return UsageError(std::string(options.status().message()));
    job_options = *options;
    if (job.trace) {
      // Printed before the job runs, so the trace can be looked up while it
      // does.
      std::fprintf(stderr, "trace %s\n",
                   job_options.traceparent().substr(3, 32).c_str());
    }
    auto parsed = ParseRateFlags(job.rates, job.bursts);
    if (!parsed.ok()) return UsageError(std::string(parsed.status().message()));
    limits = *std::move(parsed);
    if (command == "run" && (max_inflight < 1 || max_inflight > kMaxInflight)) {
      return UsageError(
          absl::StrCat("--max-inflight must be from 1 to ", kMaxInflight));
    }
    auto opened = InputReader::Open(args->empty() ? "-" : (*args)[0]);
    if (!opened.ok()) return UsageError(std::string(opened.status().message()));
    input = *std::move(opened);
  }

  if (command == "run") {
    EgressPolicy policy;
    for (const std::string& text : allow_cidrs) {
      auto cidr = Cidr::Parse(text);
      if (!cidr.ok())
        return UsageError(
            absl::StrCat("--allow-cidr: ", cidr.status().message()));
      policy.Allow(*cidr);
    }
    LogFormat format;
    if (!ParseLogFormat(log_format, ::isatty(STDERR_FILENO) == 1, &format)) {
      return UsageError(absl::StrCat("--log-format: \"", log_format,
                                     "\" is not text, json or auto"));
    }
    SetLogFormat(format);
    worker::WorkerOptions worker_options;
    worker_options.name = "local";
    worker_options.max_inflight = max_inflight;
    worker_options.loops = std::max(1u, std::thread::hardware_concurrency());
    SetLogLevel(LogLevel::kWarning);
    auto fleet = EmbeddedFleet::Start(std::move(policy), worker_options);
    if (!fleet.ok()) {
      std::fprintf(stderr, "error: %s\n",
                   std::string(fleet.status().message()).c_str());
      return kExitSomeFailed;
    }
    if (absl::Status set = SetLimits((*fleet)->channel(), limits); !set.ok())
      return ReportError(set);
    return SubmitJob((*fleet)->channel(), job_options, input.get(), output);
  }

  absl::StatusOr<std::shared_ptr<grpc::Channel>> dialled =
      Dial(coordinator, security);
  if (!dialled.ok()) return UsageError(std::string(dialled.status().message()));
  std::shared_ptr<grpc::Channel> channel = *std::move(dialled);
  if (command == "top") {
    if (!need_args(0, "[--interval D]")) return kExitUsage;
    top.coordinator = coordinator;
    // The live view waits for an unreachable coordinator itself, saying so.
    if (TopIsLive()) return TopCommand(channel, top);
  }
  if (!CheckReachable(channel, absl::Seconds(5))) {
    std::fprintf(stderr, "error: cannot reach the coordinator at %s%s\n",
                 coordinator.c_str(),
                 security.tls || !security.ca_file.empty()
                     ? " (or its TLS certificate is not trusted: check "
                       "--tls-ca and --tls-server-name)"
                     : "");
    return kExitUnreachable;
  }
  if (command == "submit") {
    if (absl::Status set = SetLimits(channel, limits); !set.ok())
      return ReportError(set);
    return SubmitJob(channel, job_options, input.get(), output);
  }
  if (command == "limits") return LimitsCommand(channel, *args, burst);
  if (command == "breakers")
    return BreakersCommand(channel, *args, breaker_flags);
  if (command == "aggregate") {
    if (!need_args(1, "FILE|-")) return kExitUsage;
    if (!job.traceparent.empty() || !job.tracestate.empty()) {
      absl::StatusOr<TraceContext> context =
          ParseTraceparent(job.traceparent, job.tracestate);
      if (!context.ok()) {
        return UsageError(absl::StrCat("--", context.status().message()));
      }
    }
    return AggregateCommand(channel, (*args)[0], job.traceparent,
                            job.tracestate);
  }
  if (command == "watch") {
    if (!need_args(1, "JOB_ID [--from SEQ]")) return kExitUsage;
    return WatchJob(channel, (*args)[0], from_seq, output);
  }
  if (command == "jobs") return ListJobsCommand(channel);
  if (command == "workers") return WorkersCommand(channel);
  if (command == "top") return TopCommand(channel, top);
  if (!need_args(1, "JOB_ID")) return kExitUsage;
  if (command == "status")
    return StatusCommand(channel, (*args)[0], stats_json);
  return CancelCommand(channel, (*args)[0]);
}

}  // namespace
}  // namespace fetchfleet::fetchctl

int main(int argc, char** argv) {
  signal(SIGPIPE, SIG_IGN);
  fetchfleet::fetchctl::InstallInterruptHandler();
  fetchfleet::SetLogComponent("fetchctl");
  int code = fetchfleet::fetchctl::Main(argc, argv);
  // What a command printed on stdout is its answer: one that did not get out
  // (a full disk) fails it. EPIPE is the reader's choice (`| head`): quiet.
  if (std::fflush(stdout) != 0 && errno != EPIPE) {
    std::fprintf(stderr, "error: writing stdout: %s\n", std::strerror(errno));
    if (code == fetchfleet::fetchctl::kExitOk)
      code = fetchfleet::fetchctl::kExitSomeFailed;
  }
  return code;
}
