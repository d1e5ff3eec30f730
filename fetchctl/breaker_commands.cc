#include "fetchctl/breaker_commands.h"

#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/rate_limiter.h"
#include "fetchctl/exit_codes.h"
#include "proto/fetchfleet.grpc.pb.h"

namespace fetchfleet::fetchctl {
namespace {

constexpr auto kCallTimeout = std::chrono::seconds(10);

const char* StateName(v1::BreakerState state) {
  switch (state) {
    case v1::BREAKER_OPEN:
      return "open";
    case v1::BREAKER_HALF_OPEN:
      return "half-open";
    default:
      return "closed";
  }
}

std::string Settings(const v1::BreakerConfig& c) {
  std::string text = absl::StrFormat(
      "%.0f%% of %u in %us, open %.1fs..%.0fs, quorum %u",
      100 * c.failure_ratio(), c.min_calls(), c.window_s(),
      c.open_ms() / 1000.0, c.max_open_ms() / 1000.0, c.quorum());
  if (c.slow_call_ms() > 0)
    absl::StrAppendFormat(&text, ", slow > %ums", c.slow_call_ms());
  return text;
}

// CheckSettings: BreakerConfig::Validate, and what the wire cannot carry: the
// window goes as whole seconds and the periods as whole milliseconds, so
// `--window 1500ms` would silently become 1s and `--slow-call 500us` off.
absl::Status CheckSettings(const BreakerConfig& c) {
  if (c.window % absl::Seconds(1) != absl::ZeroDuration())
    return absl::InvalidArgumentError("--window must be whole seconds");
  for (auto [name, d] : {std::pair<const char*, absl::Duration>{"open", c.open},
                         {"max-open", c.max_open},
                         {"slow-call", c.slow_call}}) {
    if (d % absl::Milliseconds(1) != absl::ZeroDuration()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--", name, " must be whole milliseconds"));
    }
  }
  return c.Validate();
}

std::string Clock(int64_t unix_ms) {
  if (unix_ms <= 0) return "-";
  return absl::FormatTime("%H:%M:%S", absl::FromUnixMillis(unix_ms),
                          absl::LocalTimeZone());
}

int List(v1::AdminService::Stub* stub) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + kCallTimeout);
  v1::ListBreakersResponse response;
  grpc::Status status =
      stub->ListBreakers(&context, v1::ListBreakersRequest(), &response);
  if (!status.ok()) return ReportError(status);
  std::printf("%-28s %-9s %9s %8s %8s %9s %10s %6s  %s\n", "KEY", "STATE",
              "FAILURES", "CALLS", "WORKERS", "OPENED", "NEXT PROBE", "TRIPS",
              "SETTINGS");
  for (const v1::BreakerInfo& b : response.breakers()) {
    std::string failures =
        b.calls() > 0
            ? absl::StrFormat("%.0f%%", 100.0 * b.failures() / b.calls())
            : "-";
    std::string next_probe =
        b.state() == v1::BREAKER_OPEN
            ? absl::StrFormat("%.1fs", b.next_probe_ms() / 1000.0)
            : (b.state() == v1::BREAKER_HALF_OPEN ? "probing" : "-");
    std::printf("%-28s %-9s %9s %8llu %8u %9s %10s %6llu  %s%s\n",
                b.key().c_str(), StateName(b.state()), failures.c_str(),
                static_cast<unsigned long long>(b.calls()), b.failing_workers(),
                Clock(b.opened_at_unix_ms()).c_str(), next_probe.c_str(),
                static_cast<unsigned long long>(b.trips()),
                Settings(b.config()).c_str(),
                b.configured() ? "" : " (defaults)");
  }
  std::printf(
      "%llu state change(s) reported to this coordinator since it started\n",
      static_cast<unsigned long long>(response.changes_reported()));
  if (!response.in_redis()) {
    std::printf(
        "(no Redis: each worker keeps its own breakers; shown is the last "
        "change a worker reported)\n");
  }
  return kExitOk;
}

}  // namespace

void BreakerFlags::Register(FlagSet* flags) {
  flags->Duration("window", &config.window,
                  "breakers set: the sliding window of outcomes");
  flags->Int("min-calls", &config.min_calls,
             "breakers set: calls in the window before it may open");
  flags->Double("failure-ratio", &config.failure_ratio,
                "breakers set: failed share of calls that opens it (0-1]");
  flags->Duration("open", &config.open, "breakers set: the first open period");
  flags->Duration("max-open", &config.max_open,
                  "breakers set: the cap of the open period, which doubles "
                  "after each failed probe");
  flags->Int("quorum", &config.quorum,
             "breakers set: distinct workers that must see failures");
  flags->Duration("slow-call", &config.slow_call,
                  "breakers set: calls slower than this count as failures "
                  "(0 = off)");
}

int BreakersCommand(const std::shared_ptr<grpc::Channel>& channel,
                    const std::vector<std::string>& args,
                    const BreakerFlags& flags) {
  auto usage = [] {
    std::fprintf(stderr,
                 "usage: fetchctl breakers list | set KEY [--window D] "
                 "[--min-calls N] [--failure-ratio F] [--open D] [--max-open "
                 "D] [--quorum N] [--slow-call D] | reset KEY\n");
    return kExitUsage;
  };
  if (args.empty()) return usage();
  auto stub = v1::AdminService::NewStub(channel);
  const std::string& verb = args[0];
  if (verb == "list" && args.size() == 1) return List(stub.get());
  if ((verb != "set" && verb != "reset") || args.size() != 2) return usage();
  if (absl::Status key = CheckRateKey(args[1]); !key.ok()) {
    std::fprintf(stderr, "error: %s\n", std::string(key.message()).c_str());
    return kExitUsage;
  }
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + kCallTimeout);
  v1::BreakerInfo info;
  if (verb == "set") {
    if (absl::Status valid = CheckSettings(flags.config); !valid.ok()) {
      std::fprintf(stderr, "error: %s\n", std::string(valid.message()).c_str());
      return kExitUsage;
    }
    v1::SetBreakerRequest request;
    request.set_key(args[1]);
    *request.mutable_config() = flags.config.ToProto();
    grpc::Status status = stub->SetBreaker(&context, request, &info);
    if (!status.ok()) return ReportError(status);
    std::printf("%s: %s\n", args[1].c_str(), Settings(info.config()).c_str());
    return kExitOk;
  }
  v1::BreakerRef request;
  request.set_key(args[1]);
  grpc::Status status = stub->ResetBreaker(&context, request, &info);
  if (!status.ok()) return ReportError(status);
  std::printf("%s: breaker reset (closed, window cleared)\n", args[1].c_str());
  return kExitOk;
}

}  // namespace fetchfleet::fetchctl
