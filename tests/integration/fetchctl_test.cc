// fetchctl's own behaviour against a real coordinator and workers: results
// stream out as they arrive, a closed pipe or a dead coordinator ends it
// promptly with the right exit status, unknown keys and out-of-range numbers
// are refused the same way everywhere, and its messages read right.
#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "proto/fetchfleet.grpc.pb.h"
#include "tests/integration/fleet.h"
#include "tests/testing/http_test_server.h"
#include "tests/testing/redis_server.h"

namespace fetchfleet::testing {
namespace {

using nlohmann::json;

// A request that stays in flight for the whole test (the test ends first).
constexpr char kSlowPath[] = "/delay/60000";

// JobInput: `fast` quick requests, then `slow` ones that outlast the test.
std::string JobInput(const HttpTestServer& upstream, int fast, int slow) {
  std::string input;
  for (int i = 0; i < fast; ++i)
    absl::StrAppend(&input, "{\"id\": \"fast", i, "\", \"url\": \"",
                    upstream.Url("/json/a"), "\"}\n");
  for (int i = 0; i < slow; ++i)
    absl::StrAppend(&input, "{\"id\": \"slow", i, "\", \"url\": \"",
                    upstream.Url(kSlowPath), "\"}\n");
  return input;
}

// The slow requests must not time out or be retried while the test runs.
const std::vector<std::string> kSlowJobFlags = {
    "--timeout", "90s", "--max-attempts", "1", "--no-progress"};

std::vector<std::string> Concat(std::vector<std::string> a,
                                const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// WaitFor polls `condition` until it holds or `timeout` passes.
template <typename F>
bool WaitFor(F condition, absl::Duration timeout = absl::Seconds(20)) {
  absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    if (condition()) return true;
    absl::SleepFor(absl::Milliseconds(20));
  }
  return condition();
}

std::string ShellQuote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'')
      out += "'\\''";
    else
      out += c;
  }
  return out + "'";
}

// --- Results are the product: each batch is written out as it arrives. ---

TEST(FetchctlStreamTest, ResultsReachStdoutAsTheyArrive) {
  HttpTestServer upstream;
  Fleet fleet;
  fleet.AddWorker("w-1");
  Subprocess submit(fleet.Fetchctl(Concat({"submit"}, kSlowJobFlags)),
                    WriteTempFile(JobInput(upstream, 3, 5)));
  // The three fast results are in stdout while the job still runs.
  EXPECT_TRUE(WaitFor([&] {
    return ParseResults(submit.Stdout()).size() == 3 || !submit.Running();
  }));
  EXPECT_TRUE(submit.Running());
  EXPECT_EQ(ParseResults(submit.Stdout()).size(), 3u) << submit.Stderr();
  // Killed now, it has lost none of them, and wrote whole lines.
  submit.Signal(SIGKILL);
  submit.Wait();
  EXPECT_EQ(ParseResults(submit.Stdout()).size(), 3u);
  EXPECT_EQ(submit.Stdout().back(), '\n');
}

TEST(FetchctlStreamTest, InterruptedItSaysTheJobRunsOnAndHowToResume) {
  HttpTestServer upstream;
  Fleet fleet;
  fleet.AddWorker("w-1");
  Subprocess submit(fleet.Fetchctl(Concat({"submit"}, kSlowJobFlags)),
                    WriteTempFile(JobInput(upstream, 3, 5)));
  auto job_id = submit.WaitForOutput("job ");
  ASSERT_TRUE(job_id.ok()) << job_id.status();
  ASSERT_TRUE(WaitFor([&] {
    return ParseResults(submit.Stdout()).size() == 3 || !submit.Running();
  })) << submit.Stderr();
  submit.Signal(SIGINT);
  EXPECT_EQ(submit.Wait(absl::Seconds(20)), 128 + SIGINT);
  EXPECT_EQ(ParseResults(submit.Stdout()).size(), 3u);
  EXPECT_NE(
      submit.Stderr().find(absl::StrCat("job ", *job_id, " keeps running")),
      std::string::npos)
      << submit.Stderr();
  EXPECT_NE(submit.Stderr().find(
                absl::StrCat("fetchctl watch ", *job_id, " --from 4")),
            std::string::npos)
      << submit.Stderr();
  // It does: the job is still there, running.
  CommandResult status = RunCommand(fleet.Fetchctl({"status", *job_id}));
  EXPECT_EQ(status.exit_code, 0) << status.err;
  EXPECT_NE(status.out.find("running"), std::string::npos) << status.out;
}

TEST(FetchctlStreamTest, ResultsReachTheOutputFileAsTheyArrive) {
  HttpTestServer upstream;
  Fleet fleet;
  fleet.AddWorker("w-1");
  std::string path = WriteTempFile("");
  Subprocess submit(
      fleet.Fetchctl(Concat({"submit", "--output", path}, kSlowJobFlags)),
      WriteTempFile(JobInput(upstream, 3, 5)));
  EXPECT_TRUE(WaitFor([&] {
    return ParseResults(ReadFile(path)).size() == 3 || !submit.Running();
  }));
  EXPECT_TRUE(submit.Running());
  EXPECT_EQ(ParseResults(ReadFile(path)).size(), 3u) << submit.Stderr();
}

TEST(FetchctlStreamTest, PipedIntoHeadItEndsPromptlyAndSaysTheJobRunsOn) {
  HttpTestServer upstream;
  Fleet fleet;
  fleet.AddWorker("w-1");
  std::string input = WriteTempFile(JobInput(upstream, 1, 5));
  std::string err = WriteTempFile("");
  std::string command;
  for (const std::string& arg :
       fleet.Fetchctl(Concat({"submit"}, kSlowJobFlags)))
    absl::StrAppend(&command, ShellQuote(arg), " ");
  absl::StrAppend(&command, "< ", ShellQuote(input), " 2>", ShellQuote(err),
                  " | head -1");
  absl::Time start = absl::Now();
  // The slow requests take 60 s: only a fetchctl that stops when its reader
  // goes returns before they do.
  CommandResult piped =
      RunCommand({"/bin/sh", "-c", command}, "", absl::Seconds(40));
  absl::Duration took = absl::Now() - start;
  EXPECT_LT(took, absl::Seconds(15)) << ReadFile(err);
  std::vector<json> results =
      ParseResults(piped.out.substr(0, piped.out.find('\n') + 1));
  ASSERT_EQ(results.size(), 1u) << piped.out;
  EXPECT_EQ(results[0]["id"], "fast0");
  std::string said = ReadFile(err);
  EXPECT_NE(said.find("output was closed"), std::string::npos) << said;
  EXPECT_NE(said.find("keeps running"), std::string::npos) << said;
  EXPECT_NE(said.find("fetchctl watch "), std::string::npos) << said;
}

TEST(FetchctlStreamTest, InputTricklingFromAPipeGoesAtOnceAndACancelWakesIt) {
  HttpTestServer upstream;
  Fleet fleet;
  fleet.AddWorker("w-1");
  std::string fifo = WriteTempFile("") + ".fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0) << std::strerror(errno);
  Subprocess submit(fleet.Fetchctl(Concat({"submit"}, kSlowJobFlags)), fifo);
  // Opens once fetchctl has (the FIFO's two ends meet); kept open: more input
  // may come, as from `tail -f`.
  int writer = ::open(fifo.c_str(), O_WRONLY);
  ASSERT_GE(writer, 0) << std::strerror(errno);
  std::string line = upstream.Url("/json/a") + "\n";
  ASSERT_EQ(::write(writer, line.data(), line.size()),
            static_cast<ssize_t>(line.size()));
  // One line is a batch: it is fetched and its result printed while the
  // input is still open.
  EXPECT_TRUE(WaitFor([&] {
    return ParseResults(submit.Stdout()).size() == 1 || !submit.Running();
  }));
  EXPECT_EQ(ParseResults(submit.Stdout()).size(), 1u) << submit.Stderr();
  // The coordinator dies while fetchctl waits for input: it does not wait on.
  fleet.coordinator()->Signal(SIGKILL);
  EXPECT_EQ(submit.Wait(absl::Seconds(20)), 3) << submit.Stderr();
  EXPECT_NE(submit.Stderr().find("fetchctl watch "), std::string::npos)
      << submit.Stderr();
  ::close(writer);
}

// --- A coordinator gone mid-job: exit 3 and say how to resume. ---

TEST(FetchctlExitTest, CoordinatorKilledMidSubmitExitsUnreachableWithHint) {
  HttpTestServer upstream;
  Fleet fleet;
  fleet.AddWorker("w-1");
  Subprocess submit(fleet.Fetchctl(Concat({"submit"}, kSlowJobFlags)),
                    WriteTempFile(JobInput(upstream, 2, 3)));
  auto job_id = submit.WaitForOutput("job ");
  ASSERT_TRUE(job_id.ok()) << job_id.status();
  ASSERT_TRUE(WaitFor([&] { return upstream.Hits(kSlowPath) == 3; }));
  fleet.coordinator()->Signal(SIGKILL);
  EXPECT_EQ(submit.Wait(absl::Seconds(30)), 3) << submit.Stderr();
  EXPECT_NE(submit.Stderr().find(
                absl::StrCat("fetchctl watch ", *job_id, " --from ")),
            std::string::npos)
      << submit.Stderr();
}

TEST(FetchctlExitTest, CoordinatorKilledMidWatchExitsUnreachableWithHint) {
  HttpTestServer upstream;
  Fleet fleet;
  fleet.AddWorker("w-1");
  CommandResult detached =
      RunCommand(fleet.Fetchctl(Concat({"submit", "--detach"}, kSlowJobFlags)),
                 WriteTempFile(JobInput(upstream, 2, 3)));
  ASSERT_EQ(detached.exit_code, 0) << detached.err;
  // stdout holds the job id alone, though results came back before the input
  // was all in.
  std::string job_id = detached.out.substr(0, detached.out.find('\n'));
  EXPECT_EQ(detached.out, job_id + "\n");
  EXPECT_EQ(job_id.rfind("j-", 0), 0u) << detached.out;
  Subprocess watch(fleet.Fetchctl({"watch", job_id, "--no-progress"}));
  ASSERT_TRUE(WaitFor([&] { return upstream.Hits(kSlowPath) == 3; }));
  ASSERT_TRUE(WaitFor([&] { return ParseResults(watch.Stdout()).size() == 2; }))
      << watch.Stderr();
  fleet.coordinator()->Signal(SIGKILL);
  EXPECT_EQ(watch.Wait(absl::Seconds(30)), 3) << watch.Stderr();
  EXPECT_NE(
      watch.Stderr().find(absl::StrCat("fetchctl watch ", job_id, " --from 3")),
      std::string::npos)
      << watch.Stderr();
  EXPECT_EQ(ParseResults(watch.Stdout()).size(), 2u);
}

TEST(FetchctlExitTest, RefusalsExitTwoOnEveryCommand) {
  HttpTestServer upstream;
  Fleet fleet;
  fleet.AddWorker("w-1");
  for (std::vector<std::string> args : std::vector<std::vector<std::string>>{
           {"status", "nosuch"},
           {"cancel", "nosuch"},
           {"watch", "nosuch"},
           {"limits", "delete", "nosuch"},
           {"breakers", "reset", "nosuch"},
           {"aggregate", WriteTempFile("{\"parts\": 3}")},
       }) {
    CommandResult result = RunCommand(fleet.Fetchctl(args));
    EXPECT_EQ(result.exit_code, 2) << args[0] << ": " << result.err;
    EXPECT_EQ(result.err.rfind("error: ", 0), 0u) << result.err;
  }
}

TEST(FetchctlExitTest, AnInputThatCannotBeReadIsAnInputError) {
  Fleet fleet;
  fleet.AddWorker("w-1");
  // fopen opens a directory; reading it fails, which is not an empty list.
  for (const char* command : {"submit", "run"}) {
    CommandResult result = RunCommand(
        command == std::string("run")
            ? std::vector<std::string>{BinaryPath("fetchctl"), "run", "/tmp"}
            : fleet.Fetchctl({"submit", "/tmp"}));
    EXPECT_EQ(result.exit_code, 2) << command << ": " << result.err;
    EXPECT_NE(result.err.find("error: reading /tmp: Is a directory"),
              std::string::npos)
        << result.err;
    EXPECT_EQ(result.err.find(" ok, "), std::string::npos) << result.err;
  }
}

// --- Unknown keys: NOT_FOUND, exit 2, and nothing is created. ---

void ExpectUnknownKeysAreRefused(const Fleet& fleet) {
  CommandResult limit =
      RunCommand(fleet.Fetchctl({"limits", "delete", "nosuch"}));
  EXPECT_EQ(limit.exit_code, 2) << limit.err;
  EXPECT_NE(limit.err.find("error: no limit for key nosuch"), std::string::npos)
      << limit.err;
  CommandResult reset =
      RunCommand(fleet.Fetchctl({"breakers", "reset", "nosuch"}));
  EXPECT_EQ(reset.exit_code, 2) << reset.err << reset.out;
  EXPECT_NE(
      reset.err.find("error: no breaker state or settings for key nosuch"),
      std::string::npos)
      << reset.err;
  EXPECT_EQ(reset.out.find("breaker reset"), std::string::npos) << reset.out;
  CommandResult list = RunCommand(fleet.Fetchctl({"breakers", "list"}));
  EXPECT_EQ(list.exit_code, 0) << list.err;
  EXPECT_EQ(list.out.find("nosuch"), std::string::npos) << list.out;
  // A key that has settings resets fine.
  ASSERT_EQ(
      RunCommand(fleet.Fetchctl({"breakers", "set", "known", "--quorum", "1"}))
          .exit_code,
      0);
  CommandResult known =
      RunCommand(fleet.Fetchctl({"breakers", "reset", "known"}));
  EXPECT_EQ(known.exit_code, 0) << known.err;
  EXPECT_NE(known.out.find("known: breaker reset"), std::string::npos);
}

TEST(FetchctlKeysTest, UnknownKeysWithoutRedis) {
  Fleet fleet;
  ExpectUnknownKeysAreRefused(fleet);
}

TEST(FetchctlKeysTest, UnknownKeysWithRedis) {
  RedisServer redis;
  Fleet fleet({"--redis", redis.url()});
  ExpectUnknownKeysAreRefused(fleet);
  // A breaker with state in Redis but no settings resets.
  std::string key = UniqueKey("stateful");
  redis.Cli({"HSET", "ff:br:{" + key + "}", "state", "open", "v", "1"});
  CommandResult reset = RunCommand(fleet.Fetchctl({"breakers", "reset", key}));
  EXPECT_EQ(reset.exit_code, 0) << reset.err;
}

// --- Every number is bounded, in fetchctl and in the coordinator. ---

TEST(FetchctlBoundsTest, LimitsOutOfRangeAreRefused) {
  HttpTestServer upstream;
  Fleet fleet;
  for (std::vector<std::string> args : std::vector<std::vector<std::string>>{
           {"limits", "set", "k", "1e-300/s"},
           {"limits", "set", "k", "0.5/d"},
           {"limits", "set", "k", "1e9/s"},
           {"limits", "set", "k", "10/s", "--burst", "0"},
           {"limits", "set", "k", "10/s", "--burst", "1000001"},
           {"submit", "--rate", "k=1e-300/s", "-"},
           {"submit", "--rate", "k=10/s", "--burst", "k=0", "-"},
       }) {
    CommandResult result = RunCommand(fleet.Fetchctl(args), WriteTempFile(""));
    EXPECT_EQ(result.exit_code, 2)
        << absl::StrJoin(args, " ") << ": " << result.err;
  }
  CommandResult tiny =
      RunCommand(fleet.Fetchctl({"limits", "set", "k", "1e-300/s"}));
  EXPECT_NE(tiny.err.find("1/d"), std::string::npos) << tiny.err;
  // One a day is the least; it is accepted.
  EXPECT_EQ(RunCommand(fleet.Fetchctl({"limits", "set", "k", "1/d"})).exit_code,
            0);
}

TEST(FetchctlBoundsTest, CoordinatorRefusesOutOfRangeNumbersFromRawClients) {
  Fleet fleet;
  auto channel =
      grpc::CreateChannel(fleet.address(), grpc::InsecureChannelCredentials());
  auto stub = v1::AdminService::NewStub(channel);
  auto set_limit = [&](double per_second, int64_t burst) {
    grpc::ClientContext context;
    v1::SetLimitRequest request;
    request.set_key("raw");
    request.set_per_second(per_second);
    request.set_burst(burst);
    v1::KeyLimit response;
    return stub->SetLimit(&context, request, &response);
  };
  for (double rate :
       {1e-300, 1.0 / 86400 / 2, 1e7, std::numeric_limits<double>::quiet_NaN(),
        std::numeric_limits<double>::infinity(), -1.0}) {
    grpc::Status status = set_limit(rate, 1);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << rate;
    EXPECT_NE(status.error_message().find("1/d"), std::string::npos)
        << status.error_message();
  }
  EXPECT_EQ(set_limit(10, -1).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(set_limit(10, 1000001).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(set_limit(1.0 / 86400, 1).ok());
  EXPECT_TRUE(set_limit(10, 0).ok());  // 0 = the default burst, 1

  auto set_breaker = [&](v1::BreakerConfig config) {
    grpc::ClientContext context;
    v1::SetBreakerRequest request;
    request.set_key("raw");
    *request.mutable_config() = config;
    v1::BreakerInfo response;
    return stub->SetBreaker(&context, request, &response);
  };
  std::vector<v1::BreakerConfig> bad(7);
  bad[0].set_window_s(4000000000u);
  bad[1].set_min_calls(4000000000u);
  bad[2].set_failure_ratio(1.5);
  bad[3].set_open_ms(std::numeric_limits<uint64_t>::max());
  bad[4].set_max_open_ms(std::numeric_limits<uint64_t>::max());
  bad[5].set_quorum(100000);
  bad[6].set_slow_call_ms(std::numeric_limits<uint64_t>::max());
  for (const v1::BreakerConfig& config : bad) {
    EXPECT_EQ(set_breaker(config).error_code(),
              grpc::StatusCode::INVALID_ARGUMENT)
        << config.ShortDebugString();
  }
  grpc::ClientContext context;
  v1::BreakerRef ref;
  ref.set_key("nosuch");
  v1::BreakerInfo info;
  EXPECT_EQ(stub->ResetBreaker(&context, ref, &info).error_code(),
            grpc::StatusCode::NOT_FOUND);
}

TEST(FetchctlBoundsTest, ALimitIsStoredInRedisAsSet) {
  RedisServer redis;
  Fleet fleet({"--redis", redis.url()});
  std::string key = UniqueKey("third");
  auto stub = v1::AdminService::NewStub(
      grpc::CreateChannel(fleet.address(), grpc::InsecureChannelCredentials()));
  v1::SetLimitRequest request;
  request.set_key(key);
  request.set_per_second(1.0 / 3);
  request.set_burst(2);
  v1::KeyLimit response;
  // A coordinator that has not connected to Redis yet answers UNAVAILABLE ("the
  // limit was not stored"), as it should; a client retries.
  grpc::Status set;
  for (int i = 0; i < 50; ++i) {
    grpc::ClientContext context;
    set = stub->SetLimit(&context, request, &response);
    if (set.error_code() != grpc::StatusCode::UNAVAILABLE) break;
    absl::SleepFor(absl::Milliseconds(100));
  }
  ASSERT_TRUE(set.ok()) << set.error_message();
  std::string stored = redis.Cli({"HGET", "ff:limits", key});
  double per_second = 0;
  ASSERT_TRUE(absl::SimpleAtod(stored.substr(0, stored.find(' ')), &per_second))
      << stored;
  EXPECT_EQ(per_second, 1.0 / 3) << stored;
}

TEST(FetchctlBoundsTest, BreakerAndJobFlagsOutOfRangeAreRefused) {
  Fleet fleet;
  for (std::vector<std::string> args : std::vector<std::vector<std::string>>{
           {"breakers", "set", "k", "--window", "1500ms"},
           {"breakers", "set", "k", "--failure-ratio", "nan"},
           {"breakers", "set", "k", "--min-calls", "0"},
           {"breakers", "set", "k", "--slow-call", "500us"},
           {"submit", "--concurrency", "4294967296", "-"},
           {"run", "--max-inflight", "0", "-"},
           {"run", "--max-body", "33554433", "-"},
       }) {
    CommandResult result = RunCommand(fleet.Fetchctl(args), WriteTempFile(""));
    EXPECT_EQ(result.exit_code, 2)
        << absl::StrJoin(args, " ") << ": " << result.err;
  }
}

// --- Messages. ---

TEST(FetchctlTextTest, UnknownFlagSaysError) {
  CommandResult bogus =
      RunCommand({BinaryPath("fetchctl"), "submit", "--bogus", "-"});
  EXPECT_EQ(bogus.exit_code, 2);
  EXPECT_EQ(bogus.err.rfind("error: unknown flag --bogus", 0), 0u) << bogus.err;
}

TEST(FetchctlTextTest, RunHasNoCoordinatorFlag) {
  CommandResult help = RunCommand({BinaryPath("fetchctl"), "run", "--help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_EQ(help.out.find("--coordinator"), std::string::npos) << help.out;
  EXPECT_NE(help.out.find("--allow-cidr"), std::string::npos) << help.out;
}

TEST(FetchctlTextTest, AggregateHelpListsEveryPartField) {
  CommandResult help =
      RunCommand({BinaryPath("fetchctl"), "aggregate", "--help"});
  EXPECT_EQ(help.exit_code, 0);
  for (const char* field : {"\"name\"", "\"required\"", "\"fallback\"",
                            "\"url\"", "\"deadline_ms\"", "\"rate_key\""}) {
    EXPECT_NE(help.out.find(field), std::string::npos) << field << help.out;
  }
}

TEST(FetchctlTextTest, ShortJobSummaryHasNoZeroSeconds) {
  HttpTestServer upstream;
  CommandResult run = RunCommand(
      {BinaryPath("fetchctl"), "run", "--allow-cidr", "127.0.0.0/8", "-"},
      WriteTempFile(upstream.Url("/json/a") + "\n"));
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(run.err.find(" 0.0 s"), std::string::npos) << run.err;
  EXPECT_NE(run.err.find("1 ok, 0 failed, 0 retries in "), std::string::npos)
      << run.err;
  EXPECT_NE(run.err.find(" ms ("), std::string::npos) << run.err;
}

TEST(FetchctlTextTest, OnePartIsSingular) {
  HttpTestServer upstream;
  Fleet fleet;
  fleet.AddWorker("w-1");
  json doc = {{"parts", {{{"name", "a"}, {"url", upstream.Url("/json/a")}}}}};
  CommandResult one =
      RunCommand(fleet.Fetchctl({"aggregate", WriteTempFile(doc.dump())}));
  EXPECT_EQ(one.exit_code, 0) << one.err;
  EXPECT_NE(one.err.find("1 part in "), std::string::npos) << one.err;
}

}  // namespace
}  // namespace fetchfleet::testing
