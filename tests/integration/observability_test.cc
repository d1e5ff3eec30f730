// Observability against a real fleet: servers started with --log-format=json
// write nothing but JSON objects, one a line, with the fixed members and the
// job, worker and key fields, and no secret; a job's statistics (fetchctl
// status, the end-of-job summary, --stats-json) add up to exactly what its
// requests did.
#include <signal.h>

#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "tests/integration/fleet.h"
#include "tests/testing/http_test_server.h"
#include "tests/testing/redis_server.h"
#include "tests/testing/subprocess.h"

namespace fetchfleet::testing {
namespace {

using nlohmann::json;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// JsonLogLines parses every line of `log`; it fails the test on a line that
// is not a JSON object with the fixed members of `component`.
std::vector<json> JsonLogLines(const std::string& log,
                               const std::string& component) {
  static const std::regex kTime(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)");
  static const std::set<std::string> kLevels = {"debug", "info", "warning",
                                                "error"};
  std::vector<json> lines;
  for (absl::string_view line : absl::StrSplit(log, '\n')) {
    if (line.empty()) continue;
    json j = json::parse(line, nullptr, /*allow_exceptions=*/false);
    EXPECT_TRUE(j.is_object()) << "not a JSON object: " << line;
    if (!j.is_object()) continue;
    EXPECT_TRUE(j["time"].is_string() &&
                std::regex_match(j["time"].get<std::string>(), kTime))
        << line;
    EXPECT_TRUE(j["level"].is_string() &&
                kLevels.count(j["level"].get<std::string>()) > 0)
        << line;
    EXPECT_EQ(j["component"], component) << line;
    EXPECT_TRUE(j["source"].is_string()) << line;
    EXPECT_TRUE(j["message"].is_string()) << line;
    lines.push_back(std::move(j));
  }
  return lines;
}

// FindLine: the first line whose message starts with `prefix` (null if none).
const json* FindLine(const std::vector<json>& lines,
                     const std::string& prefix) {
  for (const json& j : lines) {
    if (j.contains("message") && j["message"].is_string() &&
        absl::StartsWith(j["message"].get<std::string>(), prefix))
      return &j;
  }
  return nullptr;
}

TEST(JsonLogsTest, ServersWriteOnlyJsonLinesWithFieldsAndNoSecrets) {
  // A Redis password the logs must not show (the suite's log check looks for
  // "ffsecret" in every log too).
  const std::string password = "ffsecret-json-logs-redis";
  RedisServer::Options redis_options;
  redis_options.users.push_back({"alice", password});
  RedisServer redis(redis_options);
  std::string redis_url =
      absl::StrCat("redis://alice:", password, "@127.0.0.1:", redis.port());
  HttpTestServer upstream;
  Fleet fleet({"--log-format", "json", "--redis", redis_url});
  fleet.AddWorker("w-json", {"--log-format", "json", "--redis", redis_url});

  std::string input;
  for (int i = 0; i < 3; ++i)
    absl::StrAppend(&input, upstream.Url(absl::StrCat("/json/", i)), "\n");
  // A header value that is a secret: never logged, in any format.
  absl::StrAppend(&input, "{\"url\": \"", upstream.Url("/status/404"),
                  "\", \"headers\": {\"Authorization\": \"Bearer ",
                  "ffsecret-json-logs-header\"}}\n");
  CommandResult submit = RunCommand(
      fleet.Fetchctl({"submit", "--no-progress", "-"}), WriteTempFile(input));
  ASSERT_EQ(submit.exit_code, 1) << submit.err;
  std::string job_id = submit.err.substr(4, submit.err.find('\n') - 4);
  ASSERT_TRUE(absl::StartsWith(job_id, "j-")) << submit.err;
  ASSERT_TRUE(fleet.coordinator()
                  ->WaitForOutput(absl::StrCat("job ", job_id, " done"))
                  .ok());

  // Stopped, so that the shutdown lines are in the log too.
  fleet.coordinator()->Signal(SIGTERM);
  EXPECT_EQ(fleet.coordinator()->Wait(absl::Seconds(30)), 0);
  std::string log = fleet.coordinator()->Stderr();
  std::vector<json> lines = JsonLogLines(log, "coordinator");
  ASSERT_GE(lines.size(), 5u) << log;

  const json* listening = FindLine(lines, "plaintext, no authentication");
  ASSERT_NE(listening, nullptr) << log;
  const json* connected = FindLine(lines, "worker w-json (");
  ASSERT_NE(connected, nullptr) << log;
  EXPECT_EQ((*connected)["worker"], "w-json");
  const json* created =
      FindLine(lines, absl::StrCat("job ", job_id, " created"));
  ASSERT_NE(created, nullptr) << log;
  EXPECT_EQ((*created)["job"], job_id);
  EXPECT_EQ((*created)["owner"], "anonymous");
  const json* done = FindLine(lines, absl::StrCat("job ", job_id, " done"));
  ASSERT_NE(done, nullptr) << log;
  EXPECT_EQ((*done)["job"], job_id);
  EXPECT_EQ((*done)["state"], "done");
  EXPECT_EQ((*done)["ok"], 3);  // numbers, not strings
  EXPECT_EQ((*done)["failed"], 1);
  EXPECT_TRUE((*done)["latency_p50_ms"].is_number());
  EXPECT_TRUE((*done)["body_bytes"].is_number());
  // The Redis URL is in the log, without its password.
  const json* redis_line = FindLine(lines, "redis redis://alice:***@");
  EXPECT_NE(redis_line, nullptr) << log;
  EXPECT_EQ(log.find("ffsecret"), std::string::npos) << log;
  EXPECT_NE(FindLine(lines, "stopped"), nullptr) << log;
}

TEST(JsonLogsTest, WorkerLinesAreJsonWithTheWorkerField) {
  Fleet fleet;
  Subprocess* worker = fleet.AddWorker("w-json2", {"--log-format", "json"});
  fleet.coordinator()->Signal(SIGKILL);
  fleet.coordinator()->Wait();
  // The worker notices and says so, as JSON.
  ASSERT_TRUE(worker->WaitForOutput("coordinator stream ended").ok())
      << worker->Stderr();
  worker->Signal(SIGTERM);
  worker->Wait(absl::Seconds(30));
  std::vector<json> lines = JsonLogLines(worker->Stderr(), "worker");
  const json* hello = FindLine(lines, "worker w-json2 connecting to");
  ASSERT_NE(hello, nullptr) << worker->Stderr();
  EXPECT_EQ((*hello)["worker"], "w-json2");
  const json* lost = FindLine(lines, "coordinator stream ended");
  ASSERT_NE(lost, nullptr) << worker->Stderr();
  EXPECT_EQ((*lost)["level"], "warning");
}

TEST(JsonLogsTest, ABadLogFormatIsAFlagError) {
  CommandResult bad = RunCommand(
      {BinaryPath("fetchfleet-coordinator"), "--log-format", "yaml"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("error: --log-format: \"yaml\" is not text, json or "
                         "auto"),
            std::string::npos)
      << bad.err;
}

// --- Job statistics ---

// The job of known outcomes: 20 ok (100-byte bodies), 5 x 404 and 3 x 500
// (bodies "status N", 10 bytes), with --max-attempts 2 so each 500 is retried
// once, and one line that is no request. The 500s have a rate key of their
// own, so that their failures cannot trip the breaker of the others.
std::string KnownJob(const HttpTestServer& upstream) {
  std::string input;
  for (int i = 0; i < 20; ++i)
    absl::StrAppend(&input, upstream.Url(absl::StrCat("/bytes/100?", i)), "\n");
  for (int i = 0; i < 5; ++i)
    absl::StrAppend(&input, upstream.Url(absl::StrCat("/status/404?", i)),
                    "\n");
  for (int i = 0; i < 3; ++i)
    absl::StrAppend(&input, "{\"url\": \"",
                    upstream.Url(absl::StrCat("/status/500?", i)),
                    "\", \"rate_key\": \"stats-500\"}\n");
  input += "not a url\n";
  return input;
}

void ExpectKnownStats(const json& stats, const std::string& job_id) {
  EXPECT_EQ(stats["job"], job_id);
  EXPECT_EQ(stats["state"], "done");
  EXPECT_EQ(stats["total"], 29);
  EXPECT_EQ(stats["done"], 29);
  EXPECT_EQ(stats["ok"], 20);
  EXPECT_EQ(stats["failed"], 9);
  EXPECT_EQ(stats["retries"], 3);
  EXPECT_EQ(stats["body_bytes"], 20 * 100 + 8 * 10);
  EXPECT_EQ(stats["outcomes"],
            json({{"ok", 20}, {"http_status", 8}, {"invalid_request", 1}}));
  EXPECT_EQ(stats["status_classes"],
            json({{"2xx", 20}, {"4xx", 5}, {"5xx", 3}, {"none", 1}}));
  const json& latency = stats["latency_ms"];
  EXPECT_EQ(latency["count"], 28);  // the bad line made no attempt
  double p50 = latency["p50"], p90 = latency["p90"], p99 = latency["p99"],
         max = latency["max"];
  EXPECT_GT(p50, 0);
  EXPECT_LE(p50, p90);
  EXPECT_LE(p90, p99);
  EXPECT_LE(p99, max);
  EXPECT_LT(max, 10000);  // loopback: well under the 10 s timeout
  EXPECT_TRUE(stats["rate_wait_s"].is_number());
  EXPECT_TRUE(stats["elapsed_s"].is_number());
}

TEST(JobStatsTest, StatsSayExactlyWhatTheJobsRequestsDid) {
  HttpTestServer upstream;
  Fleet fleet;
  fleet.AddWorker("w-1");
  std::string stats_path = WriteTempFile("");
  CommandResult submit =
      RunCommand(fleet.Fetchctl({"submit", "--no-progress", "--max-attempts",
                                 "2", "--stats-json", stats_path, "-"}),
                 WriteTempFile(KnownJob(upstream)));
  ASSERT_EQ(submit.exit_code, 1) << submit.err;  // some failed
  EXPECT_EQ(ParseResults(submit.out).size(), 29u);
  std::string job_id = submit.err.substr(4, submit.err.find('\n') - 4);

  // The summary on stderr: the counts line, then latency, failures, bytes.
  EXPECT_NE(submit.err.find("20 ok, 9 failed, 3 retries in "),
            std::string::npos)
      << submit.err;
  EXPECT_NE(submit.err.find("latency p50 "), std::string::npos) << submit.err;
  EXPECT_NE(submit.err.find("; failed: 8 http_status, 1 invalid_request (5 "
                            "4xx, 3 5xx); 2.0 KiB received\n"),
            std::string::npos)
      << submit.err;
  // stdout carries results only.
  EXPECT_EQ(submit.out.find("latency p50"), std::string::npos);

  // --stats-json FILE: one object on one line.
  std::string file = ReadFile(stats_path);
  ASSERT_FALSE(file.empty());
  EXPECT_EQ(file.find('\n'), file.size() - 1) << file;
  json from_submit = json::parse(file, nullptr, false);
  ASSERT_TRUE(from_submit.is_object()) << file;
  ExpectKnownStats(from_submit, job_id);

  // status --stats-json: the same object on stdout.
  CommandResult status_json =
      RunCommand(fleet.Fetchctl({"status", "--stats-json", job_id}));
  ASSERT_EQ(status_json.exit_code, 0) << status_json.err;
  json from_status = json::parse(status_json.out, nullptr, false);
  ASSERT_TRUE(from_status.is_object()) << status_json.out;
  ExpectKnownStats(from_status, job_id);
  EXPECT_EQ(from_status["latency_ms"], from_submit["latency_ms"]);

  // status: the readable block.
  CommandResult status = RunCommand(fleet.Fetchctl({"status", job_id}));
  ASSERT_EQ(status.exit_code, 0) << status.err;
  EXPECT_NE(status.out.find("latency:    p50 "), std::string::npos)
      << status.out;
  EXPECT_NE(status.out.find("(28 requests, last attempt)"), std::string::npos)
      << status.out;
  EXPECT_NE(
      status.out.find("outcomes:   20 ok, 8 http_status, 1 invalid_request\n"),
      std::string::npos)
      << status.out;
  EXPECT_NE(status.out.find("statuses:   20 2xx, 5 4xx, 3 5xx, 1 none\n"),
            std::string::npos)
      << status.out;
  EXPECT_NE(status.out.find("received:   2.0 KiB of bodies\n"),
            std::string::npos)
      << status.out;

  // watch re-reads the ended job and ends with the same statistics.
  std::string watch_path = WriteTempFile("");
  CommandResult watch = RunCommand(fleet.Fetchctl(
      {"watch", "--no-progress", "--stats-json", watch_path, job_id}));
  EXPECT_EQ(watch.exit_code, 1) << watch.err;
  EXPECT_EQ(ParseResults(watch.out).size(), 29u);
  json from_watch = json::parse(ReadFile(watch_path), nullptr, false);
  ASSERT_TRUE(from_watch.is_object());
  ExpectKnownStats(from_watch, job_id);
}

TEST(JobStatsTest, StatsJsonFlagErrors) {
  Fleet fleet;
  CommandResult unwritable =
      RunCommand(fleet.Fetchctl({"submit", "--stats-json",
                                 "/nonexistent-dir/stats.json", "-"}),
                 WriteTempFile("http://127.0.0.1:1/\n"));
  EXPECT_EQ(unwritable.exit_code, 2);
  EXPECT_NE(unwritable.err.find("error: --stats-json: cannot write "
                                "/nonexistent-dir/stats.json"),
            std::string::npos)
      << unwritable.err;
  CommandResult detached =
      RunCommand(fleet.Fetchctl({"submit", "--detach", "--stats-json",
                                 WriteTempFile(""), "-"}),
                 WriteTempFile("http://127.0.0.1:1/\n"));
  EXPECT_EQ(detached.exit_code, 2);
  EXPECT_NE(detached.err.find("--stats-json does not go with --detach"),
            std::string::npos)
      << detached.err;
}

}  // namespace
}  // namespace fetchfleet::testing
