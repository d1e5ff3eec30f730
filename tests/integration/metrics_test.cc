// Metrics, health and readiness end to end: a real coordinator and worker
// with --metrics-listen, a real local HTTP target, scraped over HTTP after
// jobs whose outcomes the test knows.
#include <curl/curl.h>
#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <map>
#include <set>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "proto/fetchfleet.grpc.pb.h"
#include "tests/integration/fleet.h"
#include "tests/testing/http_test_server.h"
#include "tests/testing/redis_server.h"

namespace fetchfleet::testing {
namespace {

struct HttpAnswer {
  long code = 0;
  std::string body;
};

size_t Append(char* data, size_t size, size_t count, void* out) {
  static_cast<std::string*>(out)->append(data, size * count);
  return size * count;
}

HttpAnswer HttpGet(int port, const std::string& path) {
  HttpAnswer answer;
  CURL* easy = curl_easy_init();
  std::string url = absl::StrCat("http://127.0.0.1:", port, path);
  curl_easy_setopt(easy, CURLOPT_URL, url.c_str());
  curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, &Append);
  curl_easy_setopt(easy, CURLOPT_WRITEDATA, &answer.body);
  curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, 10000L);
  if (curl_easy_perform(easy) == CURLE_OK)
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &answer.code);
  curl_easy_cleanup(easy);
  return answer;
}

// Sample: one line of the text format, `name{labels} value`.
struct Sample {
  std::string name;
  std::map<std::string, std::string> labels;
  double value = 0;
};

// ParseMetrics reads the exposition format (our label values never hold a
// comma, a quote or a brace, which keeps this parser small).
std::vector<Sample> ParseMetrics(const std::string& text) {
  std::vector<Sample> out;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (line.empty() || line[0] == '#') continue;
    Sample sample;
    size_t space = line.rfind(' ');
    EXPECT_NE(space, absl::string_view::npos) << line;
    if (space == absl::string_view::npos) continue;
    EXPECT_TRUE(absl::SimpleAtod(line.substr(space + 1), &sample.value))
        << line;
    absl::string_view head = line.substr(0, space);
    size_t brace = head.find('{');
    sample.name = std::string(head.substr(0, brace));
    if (brace != absl::string_view::npos) {
      absl::string_view labels = head.substr(brace + 1);
      labels.remove_suffix(1);  // '}'
      for (absl::string_view pair : absl::StrSplit(labels, ',')) {
        size_t eq = pair.find('=');
        std::string value(pair.substr(eq + 2));
        value.pop_back();  // the closing quote
        sample.labels[std::string(pair.substr(0, eq))] = value;
      }
    }
    out.push_back(std::move(sample));
  }
  return out;
}

// Value: the sample of `name` with exactly these labels (-1 when absent).
double Value(const std::vector<Sample>& samples, const std::string& name,
             const std::map<std::string, std::string>& labels = {}) {
  for (const Sample& s : samples) {
    if (s.name == name && s.labels == labels) return s.value;
  }
  return -1;
}

std::vector<Sample> Scrape(int port) {
  HttpAnswer answer = HttpGet(port, "/metrics");
  EXPECT_EQ(answer.code, 200);
  return ParseMetrics(answer.body);
}

int MetricsPort(Subprocess* process) {
  auto rest = process->WaitForOutput("/healthz and /readyz on ");
  EXPECT_TRUE(rest.ok()) << rest.status();
  int port = 0;
  if (rest.ok()) {
    EXPECT_TRUE(absl::SimpleAtoi(rest->substr(rest->rfind(':') + 1), &port))
        << *rest;
  }
  return port;
}

// WaitFor polls until `ok` or 20 s.
bool WaitFor(const std::function<bool()>& ok) {
  absl::Time deadline = absl::Now() + absl::Seconds(20);
  while (absl::Now() < deadline) {
    if (ok()) return true;
    absl::SleepFor(absl::Milliseconds(50));
  }
  return ok();
}

const std::vector<std::string> kMetricsFlags = {"--metrics-listen",
                                                "127.0.0.1:0"};

TEST(MetricsTest, CountersSayExactlyWhatAKnownJobDid) {
  HttpTestServer upstream;
  Fleet fleet(kMetricsFlags);
  int coordinator_port = MetricsPort(fleet.coordinator());
  Subprocess* worker = fleet.AddWorker("w1", kMetricsFlags);
  int worker_port = MetricsPort(worker);

  // 100 requests: 85 answered 200, 10 404s (not retried), 5 500s with 3
  // attempts each.
  std::string input;
  for (int i = 0; i < 100; ++i) {
    std::string path = i < 85   ? absl::StrCat("/ok/", i)
                       : i < 95 ? "/status/404"
                                : "/status/500";
    absl::StrAppend(&input, "{\"id\": \"r", i, "\", \"url\": \"",
                    upstream.Url(path), "\", \"max_attempts\": 3}\n");
  }
  CommandResult run = RunCommand(fleet.Fetchctl({"submit", "-"}),
                                 WriteTempFile(input), absl::Seconds(120));
  ASSERT_EQ(run.exit_code, 1) << run.err;  // some requests failed
  std::vector<nlohmann::json> results = ParseResults(run.out);
  ASSERT_EQ(results.size(), 100u);
  double body_bytes = 0;
  for (const auto& r : results) body_bytes += r["body_bytes"].get<double>();

  std::vector<Sample> w = Scrape(worker_port);
  const std::string requests = "fetchfleet_worker_requests_total";
  EXPECT_EQ(Value(w, requests, {{"outcome", "ok"}, {"status_class", "2xx"}}),
            85);
  EXPECT_EQ(
      Value(w, requests, {{"outcome", "http_status"}, {"status_class", "4xx"}}),
      10);
  EXPECT_EQ(
      Value(w, requests, {{"outcome", "http_status"}, {"status_class", "5xx"}}),
      5);
  const std::string attempts = "fetchfleet_worker_attempts_total";
  EXPECT_EQ(Value(w, attempts, {{"outcome", "ok"}, {"status_class", "2xx"}}),
            85);
  EXPECT_EQ(
      Value(w, attempts, {{"outcome", "http_status"}, {"status_class", "4xx"}}),
      10);
  EXPECT_EQ(
      Value(w, attempts, {{"outcome", "http_status"}, {"status_class", "5xx"}}),
      15);
  EXPECT_EQ(Value(w, "fetchfleet_worker_retries_total"), 10);
  EXPECT_EQ(Value(w, "fetchfleet_worker_attempt_duration_seconds_count"), 110);
  EXPECT_EQ(Value(w, "fetchfleet_worker_rate_limit_wait_seconds_count"), 110);
  EXPECT_EQ(Value(w, "fetchfleet_worker_time_to_first_byte_seconds_count"),
            110);
  EXPECT_EQ(Value(w, "fetchfleet_worker_breaker_refusals_total"), 0);
  EXPECT_EQ(Value(w, "fetchfleet_worker_egress_refusals_total"), 0);
  // Every attempt's body, the 500s' first two included.
  EXPECT_GT(Value(w, "fetchfleet_worker_received_bytes_total"), body_bytes);
  EXPECT_EQ(Value(w, "fetchfleet_worker_requests_in_flight"), 0);
  EXPECT_EQ(Value(w, "fetchfleet_worker_connected"), 1);
  // Histograms are cumulative: every attempt took under 60 s.
  double under_60s = -1;
  for (const Sample& s : w) {
    double le = 0;
    if (s.name == "fetchfleet_worker_attempt_duration_seconds_bucket" &&
        absl::SimpleAtod(s.labels.at("le"), &le) && le == 60)
      under_60s = s.value;
  }
  EXPECT_EQ(under_60s, 110);

  std::vector<Sample> c = Scrape(coordinator_port);
  EXPECT_EQ(Value(c, "fetchfleet_coordinator_census_ok"), 1);
  EXPECT_EQ(
      Value(c, "fetchfleet_coordinator_results_total", {{"outcome", "ok"}}),
      85);
  EXPECT_EQ(Value(c, "fetchfleet_coordinator_results_total",
                  {{"outcome", "http_status"}}),
            15);
  EXPECT_EQ(Value(c, "fetchfleet_coordinator_results_delivered_total"), 100);
  EXPECT_EQ(Value(c, "fetchfleet_coordinator_jobs", {{"state", "done"}}), 1);
  EXPECT_EQ(Value(c, "fetchfleet_coordinator_jobs", {{"state", "running"}}), 0);
  EXPECT_EQ(
      Value(c, "fetchfleet_coordinator_jobs_ended_total", {{"state", "done"}}),
      1);
  for (const char* state : {"pending", "parked", "leased"}) {
    EXPECT_EQ(Value(c, "fetchfleet_coordinator_requests", {{"state", state}}),
              0)
        << state;
  }
  EXPECT_EQ(Value(c, "fetchfleet_coordinator_workers", {{"state", "active"}}),
            1);
  EXPECT_EQ(Value(c, "fetchfleet_coordinator_worker_connections_total"), 1);
  EXPECT_EQ(Value(c, "fetchfleet_coordinator_leases_expired_total"), 0);
  EXPECT_EQ(
      Value(c, "fetchfleet_coordinator_rpcs_total",
            {{"method", "fetchfleet.v1.JobService/Submit"}, {"code", "OK"}}),
      1);

  // A status for a job that does not exist is counted with its code; a
  // method no service has is "other", not a new series per path.
  RunCommand(fleet.Fetchctl({"status", "no-such-job"}));
  // Raw gRPC calls (HTTP/2, a 5-byte empty message) to made-up paths.
  for (int i = 0; i < 3; ++i) {
    CURL* easy = curl_easy_init();
    std::string url =
        absl::StrCat("http://", fleet.address(), "/made.Up/Method", i);
    std::string ignored;
    curl_slist* headers =
        curl_slist_append(nullptr, "content-type: application/grpc");
    headers = curl_slist_append(headers, "te: trailers");
    curl_easy_setopt(easy, CURLOPT_URL, url.c_str());
    curl_easy_setopt(easy, CURLOPT_HTTP_VERSION,
                     CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE);
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(easy, CURLOPT_POSTFIELDS, "\0\0\0\0\0");
    curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE, 5L);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, &Append);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, &ignored);
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, 10000L);
    // gRPC answers UNIMPLEMENTED at once, and may then reset the stream it
    // did not read to the end: curl reports that as an HTTP/2 stream error.
    CURLcode code = curl_easy_perform(easy);
    EXPECT_TRUE(code == CURLE_OK || code == CURLE_HTTP2_STREAM)
        << curl_easy_strerror(code);
    curl_slist_free_all(headers);
    curl_easy_cleanup(easy);
  }
  auto other_calls = [](const std::vector<Sample>& samples) {
    double other = 0;
    for (const Sample& s : samples) {
      if (s.name == "fetchfleet_coordinator_rpcs_total" &&
          s.labels.at("method") == "other")
        other += s.value;
    }
    return other;
  };
  WaitFor([&] { return other_calls(Scrape(coordinator_port)) >= 3; });
  c = Scrape(coordinator_port);
  EXPECT_EQ(Value(c, "fetchfleet_coordinator_rpcs_total",
                  {{"method", "fetchfleet.v1.JobService/GetJob"},
                   {"code", "NOT_FOUND"}}),
            1);
  for (const Sample& s : c) {
    if (s.name != "fetchfleet_coordinator_rpcs_total") continue;
    EXPECT_FALSE(absl::StrContains(s.labels.at("method"), "made.Up"));
  }
  EXPECT_EQ(other_calls(c), 3);
}

// A configured key's breaker opens, then an operator resets it: its state
// goes back to 0 but the count of opens never goes down (a counter that fell
// would read as a coordinator restart to rate()).
TEST(MetricsTest, BreakerOpensOnlyGrow) {
  HttpTestServer upstream;
  Fleet fleet(kMetricsFlags);
  int port = MetricsPort(fleet.coordinator());
  fleet.AddWorker("w1");
  const std::string key = "down.metrics.test";
  ASSERT_EQ(RunCommand(fleet.Fetchctl({"breakers", "set", key, "--min-calls",
                                       "3", "--open", "1h", "--max-open", "1h",
                                       "--quorum", "1"}))
                .exit_code,
            0);
  upstream.SetDown(key, true);
  std::string input;
  for (int i = 0; i < 10; ++i) {
    absl::StrAppend(&input, "{\"id\": \"r", i, "\", \"url\": \"",
                    upstream.Url(absl::StrCat("/switch/", key, "?i=", i)),
                    "\", \"rate_key\": \"", key, "\"}\n");
  }
  CommandResult run =
      RunCommand(fleet.Fetchctl({"submit", "--max-attempts", "1",
                                 "--concurrency", "1", "-"}),
                 WriteTempFile(input));
  ASSERT_EQ(run.exit_code, 1) << run.err;
  const std::map<std::string, std::string> labels = {{"key", key}};
  ASSERT_TRUE(WaitFor([&] {
    return Value(Scrape(port), "fetchfleet_breaker_state", labels) == 1;
  }));
  std::vector<Sample> open = Scrape(port);
  EXPECT_EQ(Value(open, "fetchfleet_breaker_opened_total", labels), 1);
  EXPECT_EQ(Value(open, "fetchfleet_breaker_opened_total", {{"key", "other"}}),
            0);

  ASSERT_EQ(RunCommand(fleet.Fetchctl({"breakers", "reset", key})).exit_code,
            0);
  std::vector<Sample> reset = Scrape(port);
  EXPECT_EQ(Value(reset, "fetchfleet_breaker_state", labels), 0);
  EXPECT_EQ(Value(reset, "fetchfleet_breaker_opened_total", labels), 1);
}

TEST(MetricsTest, KeyLabelsStayBoundedOverTenThousandHosts) {
  HttpTestServer upstream;
  Fleet fleet(kMetricsFlags);
  int coordinator_port = MetricsPort(fleet.coordinator());
  Subprocess* worker = fleet.AddWorker("w1", kMetricsFlags);
  int worker_port = MetricsPort(worker);

  // 1,200 configured limits (a fast rate: nothing waits), set over gRPC.
  auto admin = v1::AdminService::NewStub(
      grpc::CreateChannel(fleet.address(), grpc::InsecureChannelCredentials()));
  std::set<std::string> configured;
  for (int i = 0; i < 1200; ++i) {
    v1::SetLimitRequest request;
    request.set_key(absl::StrCat("host-", 100000 + i));
    request.set_per_second(100000);
    request.set_burst(1000);
    v1::KeyLimit reply;
    grpc::ClientContext context;
    ASSERT_TRUE(admin->SetLimit(&context, request, &reply).ok());
    configured.insert(request.key());
  }
  // 10,000 requests, each its own rate key (a crawl over 10,000 hosts).
  std::string input;
  for (int i = 0; i < 10000; ++i) {
    absl::StrAppend(&input, "{\"id\": \"r", i, "\", \"url\": \"",
                    upstream.Url(absl::StrCat("/ok/", i)),
                    "\", \"rate_key\": \"host-", 100000 + i, "\"}\n");
  }
  CommandResult run = RunCommand(fleet.Fetchctl({"submit", "-"}),
                                 WriteTempFile(input), absl::Seconds(300));
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(ParseResults(run.out).size(), 10000u);

  HttpAnswer raw = HttpGet(coordinator_port, "/metrics");
  std::vector<Sample> c = ParseMetrics(raw.body);
  std::map<std::string, std::set<std::string>> keys_by_family;
  for (const Sample& s : c) {
    if (s.labels.count("key") > 0)
      keys_by_family[s.name].insert(s.labels.at("key"));
  }
  ASSERT_TRUE(keys_by_family.count("fetchfleet_rate_limit_per_second") > 0);
  // The labelled keys are the first 1,000 configured ones in sorted order,
  // and the rest (200 configured, 8,800 not) are "other".
  std::set<std::string> expected(configured.begin(),
                                 std::next(configured.begin(), 1000));
  expected.insert("other");
  for (const auto& [family, keys] : keys_by_family) {
    EXPECT_LE(keys.size(), 1001u) << family;
    for (const std::string& key : keys)
      EXPECT_TRUE(expected.count(key) > 0) << family << " " << key;
  }
  EXPECT_EQ(keys_by_family["fetchfleet_rate_limit_per_second"], expected);
  // The 200 configured keys past the bound are summed into other.
  EXPECT_EQ(Value(c, "fetchfleet_rate_limit_per_second", {{"key", "other"}}),
            200 * 100000.0);
  // The whole exposition stays small, and no URL is in it.
  EXPECT_LT(c.size(), 6u * 1001 + 300);
  EXPECT_FALSE(absl::StrContains(raw.body, "/ok/"));
  EXPECT_FALSE(absl::StrContains(raw.body, "http://"));

  // The worker labels no key at all.
  HttpAnswer worker_raw = HttpGet(worker_port, "/metrics");
  EXPECT_FALSE(absl::StrContains(worker_raw.body, "key=\""));
  EXPECT_FALSE(absl::StrContains(worker_raw.body, "host-"));
  EXPECT_LT(ParseMetrics(worker_raw.body).size(), 300u);
  EXPECT_EQ(
      Value(ParseMetrics(worker_raw.body), "fetchfleet_worker_requests_total",
            {{"outcome", "ok"}, {"status_class", "2xx"}}),
      10000);
}

TEST(MetricsTest, ProbesFlipWithTheWorkersDrainAndTheCoordinatorsRedis) {
  HttpTestServer upstream;
  RedisServer redis;
  Fleet fleet({"--metrics-listen", "127.0.0.1:0", "--redis", redis.url()});
  int coordinator_port = MetricsPort(fleet.coordinator());
  Subprocess* worker = fleet.AddWorker(
      "w1", {"--metrics-listen", "127.0.0.1:0", "--drain-timeout", "30s"});
  int worker_port = MetricsPort(worker);

  EXPECT_TRUE(
      WaitFor([&] { return HttpGet(worker_port, "/readyz").code == 200; }));
  EXPECT_TRUE(WaitFor(
      [&] { return HttpGet(coordinator_port, "/readyz").code == 200; }));
  EXPECT_EQ(HttpGet(coordinator_port, "/healthz").code, 200);

  // A coordinator whose Redis stops answering is not ready, and is again
  // once Redis is back.
  if (redis.pid() > 0) {
    kill(redis.pid(), SIGSTOP);
    EXPECT_TRUE(WaitFor([&] {
      HttpAnswer a = HttpGet(coordinator_port, "/readyz");
      return a.code == 503 && absl::StrContains(a.body, "Redis");
    }));
    EXPECT_EQ(HttpGet(coordinator_port, "/healthz").code, 200);
    kill(redis.pid(), SIGCONT);
    EXPECT_TRUE(WaitFor(
        [&] { return HttpGet(coordinator_port, "/readyz").code == 200; }));
  }

  // A draining worker is alive but not ready: it finishes a slow request
  // first.
  Subprocess submit(
      fleet.Fetchctl({"submit", "-"}),
      WriteTempFile(absl::StrCat("{\"id\": \"slow\", \"url\": \"",
                                 upstream.Url("/delay/3000"), "\"}\n")));
  ASSERT_TRUE(WaitFor([&] { return upstream.Hits("/delay/3000") == 1; }));
  worker->Signal(SIGTERM);
  EXPECT_TRUE(WaitFor([&] {
    HttpAnswer a = HttpGet(worker_port, "/readyz");
    return a.code == 503 && absl::StrContains(a.body, "draining");
  }));
  EXPECT_EQ(HttpGet(worker_port, "/healthz").code, 200);
  EXPECT_EQ(Value(Scrape(worker_port), "fetchfleet_worker_draining"), 1);
  EXPECT_EQ(submit.Wait(), 0) << submit.Stderr();
  EXPECT_EQ(worker->Wait(), 0);
}

}  // namespace
}  // namespace fetchfleet::testing
