// End-to-end behaviour of the fleet: real coordinator and worker processes, a
// real fetchctl, a real local HTTP server.
#include "tests/integration/fleet.h"

#include <signal.h>

#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tests/testing/http_test_server.h"

namespace fetchfleet::testing {
namespace {

using nlohmann::json;

// ById indexes results by id and fails on an id seen twice.
std::map<std::string, json> ById(const std::vector<json>& results) {
  std::map<std::string, json> by_id;
  for (const json& r : results) {
    EXPECT_TRUE(by_id.emplace(r["id"].get<std::string>(), r).second)
        << "duplicate " << r.dump();
  }
  return by_id;
}

void ExpectSeqsAreOneToN(const std::vector<json>& results) {
  std::set<uint64_t> seqs;
  for (const json& r : results) seqs.insert(r["seq"].get<uint64_t>());
  ASSERT_EQ(seqs.size(), results.size());
  if (!seqs.empty()) {
    EXPECT_EQ(*seqs.begin(), 1u);
    EXPECT_EQ(*seqs.rbegin(), results.size());
  }
}

TEST(FleetTest, HundredApiCallsWithSomeErrorsComeBackWholeAndConcurrent) {
  HttpTestServer upstream;
  Fleet fleet;
  fleet.AddWorker("w-1");
  fleet.AddWorker("w-2");
  // This test is about retries: the fast 500s finish long before the slow
  // successes, so the first ten outcomes would all be failures and open the
  // host's breaker (BreakerTest covers that). Not here.
  CommandResult set = RunCommand(
      fleet.Fetchctl({"breakers", "set", "127.0.0.1", "--min-calls", "1000"}));
  ASSERT_EQ(set.exit_code, 0) << set.err;
  std::string input;
  for (int i = 1; i <= 100; ++i) {
    std::string path = i % 10 == 0  ? "/status/500"
                       : i % 7 == 0 ? "/status/404"
                                    : absl::StrCat("/delay/100?u=", i);
    absl::StrAppend(&input, "{\"id\": \"u", i, "\", \"url\": \"",
                    upstream.Url(path), "\"}\n");
  }
  CommandResult run =
      RunCommand(fleet.Fetchctl({"submit", "--max-attempts", "2", "-"}),
                 WriteTempFile(input));
  EXPECT_EQ(run.exit_code, 1) << run.err;  // some failed
  std::vector<json> results = ParseResults(run.out);
  ASSERT_EQ(results.size(), 100u) << run.err;
  ExpectSeqsAreOneToN(results);
  std::map<std::string, json> by_id = ById(results);
  std::set<std::string> workers;
  for (int i = 1; i <= 100; ++i) {
    const json& r = by_id[absl::StrCat("u", i)];
    if (i % 10 == 0) {
      EXPECT_EQ(r["status"], 500);
      EXPECT_EQ(r["error"], "http_status");
      EXPECT_EQ(r["attempts"], 2);  // 5xx retried up to --max-attempts
    } else if (i % 7 == 0) {
      EXPECT_EQ(r["status"], 404);
      EXPECT_EQ(r["attempts"], 1);  // 4xx never retried
    } else {
      EXPECT_EQ(r["ok"], true) << r.dump();
      EXPECT_EQ(r["body"], "slept 100");
    }
    workers.insert(r["worker"].get<std::string>());
  }
  EXPECT_EQ(workers, (std::set<std::string>{"w-1", "w-2"}));
  EXPECT_GE(upstream.MaxConcurrent(), 20);  // concurrent, not one by one
  EXPECT_NE(run.err.find("77 ok, 23 failed, 10 retries in "), std::string::npos)
      << run.err;
}

TEST(FleetTest, WorkerKilledMidJobCostsNothing) {
  HttpTestServer upstream;
  Fleet fleet;
  Subprocess* doomed = fleet.AddWorker("w-doomed", {"--max-inflight", "40"});
  fleet.AddWorker("w-2", {"--max-inflight", "40"});
  std::string input;
  for (int i = 0; i < 300; ++i)
    absl::StrAppend(&input, upstream.Url(absl::StrCat("/delay/50?i=", i)),
                    "\n");
  Subprocess submit(fleet.Fetchctl({"submit", "-"}), WriteTempFile(input));
  ASSERT_TRUE(submit.WaitForOutput("\"worker\": \"w-doomed\"").ok());
  doomed->Signal(SIGKILL);
  EXPECT_EQ(submit.Wait(), 0) << submit.Stderr();
  std::vector<json> results = ParseResults(submit.Stdout());
  ASSERT_EQ(results.size(), 300u);
  ExpectSeqsAreOneToN(results);
  std::map<std::string, json> by_id = ById(results);
  EXPECT_EQ(by_id.size(), 300u);
  for (const auto& [id, r] : by_id) EXPECT_EQ(r["ok"], true) << r.dump();
  EXPECT_TRUE(fleet.coordinator()->WaitForOutput("worker w-doomed left").ok());
}

TEST(FleetTest, FrozenWorkerMissesHeartbeatsAndItsLateResultsAreDropped) {
  HttpTestServer upstream;
  Fleet fleet({"--worker-timeout", "1s"});
  Subprocess* frozen = fleet.AddWorker("w-frozen", {"--max-inflight", "20"});
  std::string input;
  for (int i = 0; i < 40; ++i)
    absl::StrAppend(&input, upstream.Url(absl::StrCat("/delay/300?i=", i)),
                    "\n");
  Subprocess submit(fleet.Fetchctl({"submit", "-"}), WriteTempFile(input));
  ASSERT_TRUE(fleet.coordinator()->WaitForOutput("job j-").ok());
  absl::SleepFor(absl::Milliseconds(100));  // let it take its first 20
  frozen->Signal(SIGSTOP);
  fleet.AddWorker("w-2");
  ASSERT_TRUE(fleet.coordinator()
                  ->WaitForOutput("worker w-frozen left (missed heartbeats)")
                  .ok());
  frozen->Signal(SIGCONT);  // it wakes up holding stale work and results
  EXPECT_EQ(submit.Wait(), 0) << submit.Stderr();
  std::vector<json> results = ParseResults(submit.Stdout());
  EXPECT_EQ(results.size(), 40u);
  EXPECT_EQ(ById(results).size(), 40u);
  ExpectSeqsAreOneToN(results);
}

TEST(FleetTest, ClientThatDisconnectsResumesWithWatchFrom) {
  HttpTestServer upstream;
  Fleet fleet;
  fleet.AddWorker("w-1", {"--max-inflight", "10"});
  std::string input;
  for (int i = 0; i < 200; ++i) {
    absl::StrAppend(&input, "{\"id\": \"r", i, "\", \"url\": \"",
                    upstream.Url("/delay/20"), "\"}\n");
  }
  Subprocess submit(fleet.Fetchctl({"submit", "-"}), WriteTempFile(input));
  auto job_id = submit.WaitForOutput("job ");
  ASSERT_TRUE(job_id.ok());
  ASSERT_TRUE(submit.WaitForOutput("\"seq\": 30,").ok());
  submit.Signal(SIGKILL);
  submit.Wait();
  std::vector<json> first =
      ParseResults(submit.Stdout().substr(0, submit.Stdout().rfind('\n') + 1));
  ASSERT_GE(first.size(), 30u);
  uint64_t last_seq = first.back()["seq"];

  CommandResult watch = RunCommand(fleet.Fetchctl(
      {"watch", *job_id, "--from", std::to_string(last_seq + 1)}));
  ASSERT_EQ(watch.exit_code, 0) << watch.err;
  std::vector<json> rest = ParseResults(watch.out);
  ASSERT_FALSE(rest.empty());
  std::vector<json> all = first;
  all.insert(all.end(), rest.begin(), rest.end());
  EXPECT_EQ(all.size(), 200u);
  EXPECT_EQ(ById(all).size(), 200u);
  ExpectSeqsAreOneToN(all);
  EXPECT_EQ(rest.front()["seq"], last_seq + 1);
}

TEST(FleetTest, BadLinesGetClearErrorsAndTheFleetServesTheNextJob) {
  HttpTestServer upstream;
  Fleet fleet;
  fleet.AddWorker("w-1");
  std::string big_header(200 * 1024, 'h');
  std::vector<std::pair<std::string, std::string>> corpus = {
      {"not a url at all", "invalid_request"},
      {"file:///etc/passwd", "invalid_request"},
      {"ftp://example.com/file", "invalid_request"},
      {"http://169.254.169.254/latest/meta-data/", "blocked"},
      {"http://10.0.0.1/", "blocked"},
      {"{\"url\": \"" + upstream.Url("/x") +
           "\", \"headers\": {\"X-A\": \"1\\r\\nInjected: yes\"}}",
       "invalid_request"},
      {"{\"url\": \"" + upstream.Url("/x") + "\", \"headers\": {\"X-Big\": \"" +
           big_header + "\"}}",
       "invalid_request"},
      {"{\"url\": \"" + upstream.Url("/x") + "\"", "invalid_request"},
      {"{\"url\": \"" + upstream.Url("/x") +
           "\", \"method\": \"GET /evil HTTP/1.1\"}",
       "invalid_request"},
      {"{}", "invalid_request"},
      {std::string("\xff\xfe garbage \x01\x02", 14), "invalid_request"},
      {"http://" + std::string(3 << 20, 'a') + ".example/", "too_large"},
  };
  std::string input = upstream.Url("/first") + "\n";
  for (const auto& [line, error] : corpus) absl::StrAppend(&input, line, "\n");
  absl::StrAppend(&input, upstream.Url("/last"), "\n");
  CommandResult run =
      RunCommand(fleet.Fetchctl({"submit", "-"}), WriteTempFile(input));
  EXPECT_EQ(run.exit_code, 1) << run.err;
  std::vector<json> results = ParseResults(run.out);
  ASSERT_EQ(results.size(), corpus.size() + 2) << run.err;
  std::map<std::string, json> by_id = ById(results);
  EXPECT_EQ(by_id["1"]["ok"], true);
  EXPECT_EQ(by_id[std::to_string(corpus.size() + 2)]["ok"], true);
  for (size_t i = 0; i < corpus.size(); ++i) {
    const json& r = by_id[std::to_string(i + 2)];
    EXPECT_EQ(r["ok"], false) << i;
    EXPECT_EQ(r["error"], corpus[i].second)
        << i << ": " << r.dump().substr(0, 300);
    std::string message = r["error_message"];
    if (corpus[i].second != "blocked") {
      EXPECT_EQ(message.rfind(absl::StrCat("line ", i + 2, ": "), 0), 0u)
          << message;
    }
    EXPECT_LT(message.size(),
              1000u);  // a clear message, not an echo of the input
  }
  EXPECT_EQ(upstream.Hits("/x"), 0);
  // The fleet is unharmed: the next job runs normally.
  CommandResult next =
      RunCommand(fleet.Fetchctl({"submit", "-"}),
                 WriteTempFile(upstream.Url("/json/again") + "\n"));
  EXPECT_EQ(next.exit_code, 0) << next.err;
  std::vector<json> again = ParseResults(next.out);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0]["body"], "{\"name\": \"again\"}");
}

TEST(FleetTest, UpstreamBytesThatAreNotUtf8DoNotBreakTheStream) {
  HttpTestServer upstream;
  Fleet fleet;
  fleet.AddWorker("w-1");
  std::string input = upstream.Url("/latin1-header") + "\n" +
                      upstream.Url("/binary") + "\n" +
                      upstream.Url("/json/after") + "\n";
  CommandResult run = RunCommand(fleet.Fetchctl({"submit", "--headers", "-"}),
                                 WriteTempFile(input));
  EXPECT_EQ(run.exit_code, 0) << run.err;
  std::map<std::string, json> by_id = ById(ParseResults(run.out));
  ASSERT_EQ(by_id.size(), 3u) << run.err;
  EXPECT_EQ(by_id["1"]["body_base64"], "Y2Fm6Q==");  // "caf\xe9"
  EXPECT_EQ(by_id["1"]["headers"]["x-name"], "caf?");
  EXPECT_EQ(by_id["2"]["body_base64"], "//4AAQ==");
  EXPECT_EQ(by_id["3"]["body"], "{\"name\": \"after\"}");
}

// Five 25 MB results completed together were merged into one 100 MB message
// to the coordinator, past gRPC's 64 MiB limit ("Sent message larger than
// max"): the stream broke, every lease went back and the requests were fetched
// again and again.
TEST(FleetTest, BigResultsTogetherDoNotBreakTheWorkersStream) {
  HttpTestServer upstream;
  Fleet fleet;
  Subprocess* worker = fleet.AddWorker("w-big");
  std::string input;
  for (int i = 0; i < 5; ++i)
    absl::StrAppend(&input, upstream.Url("/bytes/26000000"), "\n");
  CommandResult run =
      RunCommand(fleet.Fetchctl({"submit", "--max-body", "25000000",
                                 "--no-progress", "-"}),
                 WriteTempFile(input), absl::Seconds(90));
  EXPECT_EQ(run.exit_code, 0) << run.err;
  std::vector<json> results = ParseResults(run.out);
  ASSERT_EQ(results.size(), 5u);
  for (const json& r : results) {
    EXPECT_EQ(r["ok"], true) << r.value("error_message", "");
    EXPECT_EQ(r["truncated"], true);
    EXPECT_EQ(r["attempts"], 1);
    EXPECT_EQ(r["body"].get<std::string>().size(), 25000000u);
  }
  EXPECT_EQ(upstream.Hits("/bytes/26000000"), 5);
  EXPECT_EQ(worker->Stderr().find("coordinator stream ended"),
            std::string::npos)
      << worker->Stderr();
}

TEST(FleetTest, SigtermDrainsAWorkerWithoutLosingWork) {
  HttpTestServer upstream;
  Fleet fleet;
  Subprocess* draining =
      fleet.AddWorker("w-drain", {"--max-inflight", "30", "--loops", "2"});
  std::string input;
  for (int i = 0; i < 120; ++i)
    absl::StrAppend(&input, upstream.Url(absl::StrCat("/delay/200?i=", i)),
                    "\n");
  Subprocess submit(fleet.Fetchctl({"submit", "-"}), WriteTempFile(input));
  ASSERT_TRUE(submit.WaitForOutput("\"worker\": \"w-drain\"").ok());
  draining->Signal(SIGTERM);
  fleet.AddWorker("w-next");
  EXPECT_EQ(draining->Wait(absl::Seconds(20)), 0) << draining->Stderr();
  EXPECT_NE(draining->Stderr().find("drained"), std::string::npos);
  // One "draining:" line for the worker, not one unlabelled line per loop.
  std::string log = draining->Stderr();
  size_t first = log.find("draining: handed back");
  EXPECT_NE(first, std::string::npos) << log;
  EXPECT_EQ(log.find("draining: handed back", first + 1), std::string::npos)
      << log;
  EXPECT_EQ(submit.Wait(), 0) << submit.Stderr();
  std::vector<json> results = ParseResults(submit.Stdout());
  EXPECT_EQ(results.size(), 120u);
  EXPECT_EQ(ById(results).size(), 120u);
  // Work in flight at the signal was finished by the draining worker, not
  // redone.
  EXPECT_EQ(upstream.TotalHits(), 120);
}

// Two workers told to stop together: the coordinator's last messages (the
// new worker count) reach each after its half-close, and the stream ends only
// once they are read. Each once waited out its 5 s close deadline here (or,
// before that deadline cancelled, forever).
TEST(FleetTest, WorkersStoppedTogetherExitPromptly) {
  Fleet fleet;
  Subprocess* a = fleet.AddWorker("w-a");
  Subprocess* b = fleet.AddWorker("w-b");
  absl::Time start = absl::Now();
  a->Signal(SIGTERM);
  b->Signal(SIGTERM);
  EXPECT_EQ(a->Wait(absl::Seconds(20)), 0) << a->Stderr();
  EXPECT_EQ(b->Wait(absl::Seconds(20)), 0) << b->Stderr();
  EXPECT_LT(absl::Now() - start, absl::Seconds(3));
  EXPECT_EQ(a->Stderr().find("did not end the stream"), std::string::npos);
  EXPECT_EQ(b->Stderr().find("did not end the stream"), std::string::npos);
}

TEST(FleetTest, DetachThenWatch) {
  HttpTestServer upstream;
  Fleet fleet;
  fleet.AddWorker("w-1");
  std::string input;
  for (int i = 0; i < 20; ++i)
    absl::StrAppend(&input, upstream.Url("/delay/100"), "\n");
  CommandResult detached = RunCommand(
      fleet.Fetchctl({"submit", "--detach", "-"}), WriteTempFile(input));
  ASSERT_EQ(detached.exit_code, 0) << detached.err;
  std::string job_id = detached.out.substr(0, detached.out.find('\n'));
  ASSERT_EQ(job_id.rfind("j-", 0), 0u) << detached.out;
  CommandResult watch = RunCommand(fleet.Fetchctl({"watch", job_id}));
  EXPECT_EQ(watch.exit_code, 0) << watch.err;
  EXPECT_EQ(ParseResults(watch.out).size(), 20u);
  CommandResult status = RunCommand(fleet.Fetchctl({"status", job_id}));
  EXPECT_NE(status.out.find("state:      done"), std::string::npos)
      << status.out;
  CommandResult jobs = RunCommand(fleet.Fetchctl({"jobs"}));
  EXPECT_NE(jobs.out.find(job_id), std::string::npos);
}

TEST(FleetTest, CancelAnswersEveryRequest) {
  HttpTestServer upstream;
  Fleet fleet;
  fleet.AddWorker("w-1", {"--max-inflight", "5"});
  std::string input;
  for (int i = 0; i < 100; ++i)
    absl::StrAppend(&input, upstream.Url("/delay/200"), "\n");
  Subprocess submit(fleet.Fetchctl({"submit", "-"}), WriteTempFile(input));
  auto job_id = submit.WaitForOutput("job ");
  ASSERT_TRUE(job_id.ok());
  ASSERT_TRUE(submit.WaitForOutput("\"seq\": 1,").ok());
  CommandResult cancel = RunCommand(fleet.Fetchctl({"cancel", *job_id}));
  EXPECT_EQ(cancel.exit_code, 0) << cancel.err;
  EXPECT_EQ(submit.Wait(), 1);
  std::vector<json> results = ParseResults(submit.Stdout());
  ASSERT_EQ(results.size(), 100u);
  ExpectSeqsAreOneToN(results);
  int cancelled = 0;
  for (const json& r : results)
    cancelled += r.value("error", "") == "cancelled";
  EXPECT_GT(cancelled, 50);
  EXPECT_NE(submit.Stderr().find("[cancelled]"), std::string::npos);
  CommandResult workers = RunCommand(fleet.Fetchctl({"workers"}));
  EXPECT_NE(workers.out.find("w-1"), std::string::npos) << workers.out;
}

TEST(FleetTest, WorkerReconnectsAfterTheCoordinatorRestarts) {
  HttpTestServer upstream;
  auto coordinator = std::make_unique<Subprocess>(std::vector<std::string>{
      BinaryPath("fetchfleet-coordinator"), "--listen", "127.0.0.1:0"});
  auto port = coordinator->WaitForPort();
  ASSERT_TRUE(port.ok()) << port.status();
  std::string address = absl::StrCat("127.0.0.1:", *port);
  Subprocess worker({BinaryPath("fetchfleet-worker"), "--coordinator", address,
                     "--name", "w-re", "--allow-cidr", "127.0.0.0/8"});
  ASSERT_TRUE(coordinator->WaitForOutput("worker w-re (").ok());
  coordinator->Signal(SIGKILL);
  coordinator->Wait();
  // A new coordinator on the same address: the worker finds it by itself.
  coordinator = std::make_unique<Subprocess>(std::vector<std::string>{
      BinaryPath("fetchfleet-coordinator"), "--listen", address});
  ASSERT_TRUE(coordinator->WaitForPort().ok());
  ASSERT_TRUE(
      coordinator->WaitForOutput("worker w-re (", absl::Seconds(30)).ok())
      << worker.Stderr();
  CommandResult run = RunCommand(
      {BinaryPath("fetchctl"), "--coordinator", address, "submit", "-"},
      WriteTempFile(upstream.Url("/json/back") + "\n"));
  EXPECT_EQ(run.exit_code, 0) << run.err;
  std::vector<json> results = ParseResults(run.out);
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0]["worker"], "w-re");
}

TEST(FleetTest, UnreachableCoordinatorAndUsageErrorsHaveTheirExitCodes) {
  CommandResult unreachable = RunCommand(
      {BinaryPath("fetchctl"), "--coordinator", "127.0.0.1:1", "jobs"});
  EXPECT_EQ(unreachable.exit_code, 3);
  EXPECT_NE(unreachable.err.find("cannot reach the coordinator"),
            std::string::npos);
  CommandResult usage = RunCommand({BinaryPath("fetchctl"), "frobnicate"});
  EXPECT_EQ(usage.exit_code, 2);
  CommandResult bad_flag =
      RunCommand({BinaryPath("fetchctl"), "run", "--max-attempts", "0", "-"});
  EXPECT_EQ(bad_flag.exit_code, 2);
  EXPECT_NE(bad_flag.err.find("--max-attempts"), std::string::npos);
  CommandResult missing =
      RunCommand({BinaryPath("fetchctl"), "run", "/nonexistent/list.txt"});
  EXPECT_EQ(missing.exit_code, 2);
}

TEST(FleetTest, EmbeddedRunNeedsNoServers) {
  HttpTestServer upstream;
  std::string input =
      upstream.Url("/json/a") + "\n" + upstream.Url("/status/404") + "\n";
  CommandResult run = RunCommand(
      {BinaryPath("fetchctl"), "run", "--allow-cidr", "127.0.0.0/8", "-"},
      WriteTempFile(input));
  EXPECT_EQ(run.exit_code, 1) << run.err;
  std::vector<json> results = ParseResults(run.out);
  ASSERT_EQ(results.size(), 2u);
  std::map<std::string, json> by_id = ById(results);
  EXPECT_EQ(by_id["1"]["body"], "{\"name\": \"a\"}");
  EXPECT_EQ(by_id["2"]["status"], 404);
  // Without --allow-cidr the embedded worker keeps the default egress policy.
  CommandResult blocked =
      RunCommand({BinaryPath("fetchctl"), "run", "-"}, WriteTempFile(input));
  for (const json& r : ParseResults(blocked.out))
    EXPECT_EQ(r["error"], "blocked");
}

}  // namespace
}  // namespace fetchfleet::testing
