// Tracing end to end: real coordinator and worker processes export their
// spans to a real OTLP/gRPC receiver (tests/integration/otlp_receiver.py,
// Python's grpcio serving the official OTLP protos), and the local HTTP
// target echoes the traceparent it was sent.
#include <signal.h>

#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "tests/integration/fleet.h"
#include "tests/testing/http_test_server.h"

namespace fetchfleet::testing {
namespace {

using nlohmann::json;

constexpr char kTraceId[] = "4bf92f3577b34da6a3ce929d0e0e4736";
constexpr char kClientSpan[] = "00f067aa0ba902b7";
constexpr char kOwnTraceId[] = "0af7651916cd43dd8448eb211c80319c";
constexpr char kOwnSpan[] = "b7ad6b7169203331";

// Receiver: the OTLP receiver process and the requests it wrote.
class Receiver {
 public:
  Receiver() : out_(WriteTempFile("")) {
    process_ = std::make_unique<Subprocess>(std::vector<std::string>{
        "/usr/bin/python3",
        std::string(FETCHFLEET_SOURCE_DIR) +
            "/tests/integration/otlp_receiver.py",
        std::string(FETCHFLEET_SOURCE_DIR) + "/proto", out_});
    auto port = process_->WaitForPort(absl::Seconds(60));
    EXPECT_TRUE(port.ok()) << port.status() << process_->Stderr();
    endpoint_ = absl::StrCat("127.0.0.1:", port.ok() ? *port : 0);
  }
  const std::string& endpoint() const { return endpoint_; }

  // Span: one received span with its service's name.
  struct Span {
    std::string service;
    json span;
    std::string version;  // the resource's service.version
  };
  std::vector<Span> Spans() const {
    std::vector<Span> spans;
    std::ifstream in(out_);
    std::string line;
    while (std::getline(in, line)) {
      json request = json::parse(line, nullptr, false);
      EXPECT_TRUE(request.is_object()) << line;
      if (!request.is_object()) continue;
      for (const json& rs : request["resourceSpans"]) {
        std::string service, version;
        for (const json& a : rs["resource"]["attributes"]) {
          if (a["key"] == "service.name")
            service = a["value"]["stringValue"].get<std::string>();
          if (a["key"] == "service.version")
            version = a["value"]["stringValue"].get<std::string>();
        }
        for (const json& ss : rs["scopeSpans"]) {
          for (const json& s : ss["spans"])
            spans.push_back({service, s, version});
        }
      }
    }
    return spans;
  }

 private:
  std::string out_;
  std::string endpoint_;
  std::unique_ptr<Subprocess> process_;
};

// Hex: an id as protobuf JSON carries it (base64) in hex.
std::string Hex(const json& base64) {
  if (!base64.is_string()) return "";
  std::string raw;
  if (!absl::Base64Unescape(base64.get<std::string>(), &raw)) return "?";
  return absl::BytesToHexString(raw);
}

// Attr: a span attribute's value (the OTLP AnyValue as JSON), null if absent.
json Attr(const json& span, const std::string& key) {
  for (const json& a : span["attributes"]) {
    if (a["key"] == key) return a["value"];
  }
  return nullptr;
}

double DoubleAttr(const json& span, const std::string& key) {
  json v = Attr(span, key);
  return v.is_object() && v.contains("doubleValue")
             ? v["doubleValue"].get<double>()
             : -1;
}

std::string StringAttr(const json& span, const std::string& key) {
  json v = Attr(span, key);
  return v.is_object() && v.contains("stringValue")
             ? v["stringValue"].get<std::string>()
             : "";
}

// EchoedHeaders: the request headers the /echo target saw.
json EchoedHeaders(const json& result) {
  json echo = json::parse(result.value("body", ""), nullptr, false);
  return echo.is_object() ? echo["headers"] : json::object();
}

// Stop ends a process with SIGTERM, so it flushes its spans.
void Stop(Subprocess* process) {
  process->Signal(SIGTERM);
  EXPECT_EQ(process->Wait(absl::Seconds(30)), 0) << process->Stderr();
}

TEST(TracingTest, OneTracedRequestReachesTheReceiverWithItsTimings) {
  Receiver receiver;
  HttpTestServer upstream;
  absl::Time test_started = absl::Now();
  Fleet fleet({"--otlp-endpoint", receiver.endpoint()});
  Subprocess* worker =
      fleet.AddWorker("w-1", {"--otlp-endpoint", receiver.endpoint()});
  // Two requests carry the job's trace (one is retried once); one carries
  // its own traceparent, which wins over the job's and over a traceparent
  // header the user set.
  std::string input = absl::StrCat(
      "{\"id\": \"echo\", \"url\": \"", upstream.Url("/echo"), "\"}\n",
      "{\"id\": \"flaky\", \"url\": \"", upstream.Url("/flaky/t/1"),
      "\", \"max_attempts\": 3}\n", "{\"id\": \"own\", \"url\": \"",
      upstream.Url("/echo"), "\", \"traceparent\": \"00-", kOwnTraceId, "-",
      kOwnSpan, "-01\", \"tracestate\": \"own=1\", \"headers\": ",
      "{\"traceparent\": \"00-11111111111111111111111111111111-"
      "2222222222222222-01\"}}\n");
  std::string traceparent =
      absl::StrCat("00-", kTraceId, "-", kClientSpan, "-01");
  CommandResult run =
      RunCommand(fleet.Fetchctl({"submit", "--traceparent", traceparent,
                                 "--tracestate", "rojo=00f067aa0ba902b7", "-"}),
                 WriteTempFile(input));
  ASSERT_EQ(run.exit_code, 0) << run.err;
  std::map<std::string, json> results;
  for (const json& r : ParseResults(run.out)) results[r["id"]] = r;
  ASSERT_EQ(results.size(), 3u) << run.out;
  ASSERT_TRUE(results["echo"]["ok"].get<bool>()) << results["echo"];
  ASSERT_TRUE(results["flaky"]["ok"].get<bool>()) << results["flaky"];
  EXPECT_EQ(results["flaky"]["attempts"], 2);

  // Export happens in batches; SIGTERM flushes what is queued.
  Stop(worker);
  Stop(fleet.coordinator());
  std::vector<Receiver::Span> spans = receiver.Spans();

  // Every span, the coordinator's and the worker's, is stamped on the wall
  // clock: it began during this test.
  absl::Time test_ended = absl::Now();
  for (const Receiver::Span& s : spans) {
    absl::Time start = absl::FromUnixNanos(static_cast<int64_t>(
        std::stoull(s.span["startTimeUnixNano"].get<std::string>())));
    EXPECT_GE(start, test_started - absl::Seconds(1)) << s.span.dump();
    EXPECT_LE(start, test_ended) << s.span.dump();
    EXPECT_FALSE(s.version.empty()) << s.service;
  }

  // The job span: a child of the client's traceparent.
  const json* job = nullptr;
  std::vector<json> attempts;
  for (const Receiver::Span& s : spans) {
    if (s.service == "fetchfleet-coordinator" && s.span["name"] == "job")
      job = &s.span;
    if (s.service == "fetchfleet-worker" && s.span["name"] == "fetch attempt")
      attempts.push_back(s.span);
  }
  ASSERT_NE(job, nullptr) << "no job span among " << spans.size();
  EXPECT_EQ(Hex((*job)["traceId"]), kTraceId);
  EXPECT_EQ(Hex((*job)["parentSpanId"]), kClientSpan);
  EXPECT_EQ((*job)["traceState"], "rojo=00f067aa0ba902b7");
  EXPECT_EQ(Attr(*job, "fetchfleet.job.requests")["intValue"], "3");
  // The job's log lines carry its trace id.
  std::string log = fleet.coordinator()->Stderr();
  EXPECT_NE(log.find(absl::StrCat("trace_id=", kTraceId)), std::string::npos)
      << log;
  std::string job_span = Hex((*job)["spanId"]);
  ASSERT_EQ(job_span.size(), 16u);

  // One attempt span for echo and own, two for flaky.
  std::map<std::string, std::vector<json>> by_request;
  for (const json& a : attempts)
    by_request[StringAttr(a, "fetchfleet.request.id")].push_back(a);
  ASSERT_EQ(by_request["echo"].size(), 1u);
  ASSERT_EQ(by_request["flaky"].size(), 2u);
  ASSERT_EQ(by_request["own"].size(), 1u);

  // The echo attempt: the job's child, with libcurl's timings, and the span
  // the upstream saw as its parent.
  const json& echo = by_request["echo"][0];
  EXPECT_EQ(Hex(echo["traceId"]), kTraceId);
  EXPECT_EQ(Hex(echo["parentSpanId"]), job_span);
  for (const char* timing :
       {"fetchfleet.dns_ms", "fetchfleet.connect_ms", "fetchfleet.tls_ms",
        "fetchfleet.first_byte_ms", "fetchfleet.total_ms",
        "fetchfleet.rate_wait_ms"}) {
    EXPECT_GE(DoubleAttr(echo, timing), 0) << timing << " " << echo.dump();
  }
  // A first connection to the target: connect and first byte happened, in
  // order; plain HTTP has no TLS phase.
  EXPECT_GT(DoubleAttr(echo, "fetchfleet.first_byte_ms"), 0);
  EXPECT_GE(DoubleAttr(echo, "fetchfleet.total_ms"),
            DoubleAttr(echo, "fetchfleet.first_byte_ms"));
  EXPECT_GE(DoubleAttr(echo, "fetchfleet.first_byte_ms"),
            DoubleAttr(echo, "fetchfleet.connect_ms"));
  EXPECT_EQ(DoubleAttr(echo, "fetchfleet.tls_ms"), 0);
  EXPECT_EQ(StringAttr(echo, "fetchfleet.breaker"), "closed");
  EXPECT_EQ(Attr(echo, "http.response.status_code")["intValue"], "200");
  EXPECT_EQ(StringAttr(echo, "fetchfleet.worker"), "w-1");
  EXPECT_EQ(echo["kind"], "SPAN_KIND_CLIENT");
  EXPECT_GT(std::stoull(echo["endTimeUnixNano"].get<std::string>()),
            std::stoull(echo["startTimeUnixNano"].get<std::string>()));
  json seen = EchoedHeaders(results["echo"]);
  EXPECT_EQ(seen.value("traceparent", ""),
            absl::StrCat("00-", kTraceId, "-", Hex(echo["spanId"]), "-01"))
      << seen.dump();
  EXPECT_EQ(seen.value("tracestate", ""), "rojo=00f067aa0ba902b7");

  // The retried request: two attempts, distinct spans, the first failed and
  // retried.
  const json& first = by_request["flaky"][0];
  const json& second = by_request["flaky"][1];
  EXPECT_NE(Hex(first["spanId"]), Hex(second["spanId"]));
  std::map<std::string, const json*> by_attempt;
  for (const json& a : by_request["flaky"])
    by_attempt[Attr(a, "fetchfleet.attempt")["intValue"]] = &a;
  ASSERT_EQ(by_attempt.size(), 2u);
  EXPECT_EQ(Attr(*by_attempt["1"], "http.response.status_code")["intValue"],
            "503");
  EXPECT_EQ(Attr(*by_attempt["1"], "fetchfleet.will_retry")["boolValue"], true);
  EXPECT_EQ((*by_attempt["1"])["status"]["code"], "STATUS_CODE_ERROR");
  EXPECT_EQ(Attr(*by_attempt["2"], "fetchfleet.will_retry")["boolValue"],
            false);
  EXPECT_EQ(Hex((*by_attempt["2"])["parentSpanId"]), job_span);

  // The request with its own traceparent: its trace, not the job's; the
  // user's traceparent header was replaced.
  const json& own = by_request["own"][0];
  EXPECT_EQ(Hex(own["traceId"]), kOwnTraceId);
  EXPECT_EQ(Hex(own["parentSpanId"]), kOwnSpan);
  json own_seen = EchoedHeaders(results["own"]);
  EXPECT_EQ(own_seen.value("traceparent", ""),
            absl::StrCat("00-", kOwnTraceId, "-", Hex(own["spanId"]), "-01"));
  EXPECT_EQ(own_seen.value("tracestate", ""), "own=1");
}

TEST(TracingTest, TraceFlagStartsATraceAndPrintsItsId) {
  Receiver receiver;
  HttpTestServer upstream;
  Fleet fleet({"--otlp-endpoint", receiver.endpoint()});
  Subprocess* worker =
      fleet.AddWorker("w-1", {"--otlp-endpoint", receiver.endpoint()});
  CommandResult run = RunCommand(fleet.Fetchctl({"submit", "--trace", "-"}),
                                 WriteTempFile(upstream.Url("/echo") + "\n"));
  ASSERT_EQ(run.exit_code, 0) << run.err;
  size_t at = run.err.find("trace ");
  ASSERT_NE(at, std::string::npos) << run.err;
  std::string trace_id = run.err.substr(at + 6, 32);
  std::vector<json> results = ParseResults(run.out);
  ASSERT_EQ(results.size(), 1u);
  json seen = EchoedHeaders(results[0]);
  EXPECT_EQ(seen.value("traceparent", "").substr(3, 32), trace_id);
  Stop(worker);
  Stop(fleet.coordinator());
  int in_trace = 0;
  for (const Receiver::Span& s : receiver.Spans())
    in_trace += Hex(s.span["traceId"]) == trace_id ? 1 : 0;
  EXPECT_EQ(in_trace, 2);  // the job and its one attempt
}

TEST(TracingTest, AggregateCallHasASpanAndOnePerPart) {
  Receiver receiver;
  HttpTestServer upstream;
  Fleet fleet({"--otlp-endpoint", receiver.endpoint()});
  Subprocess* worker =
      fleet.AddWorker("w-1", {"--otlp-endpoint", receiver.endpoint()});
  std::string doc = absl::StrCat(
      "{\"parts\": [{\"name\": \"a\", \"url\": \"", upstream.Url("/json/a"),
      "\"}, {\"name\": \"b\", \"url\": \"", upstream.Url("/json/b"),
      "\"}], \"deadline_ms\": 5000}");
  CommandResult run = RunCommand(
      fleet.Fetchctl({"aggregate", "--traceparent",
                      absl::StrCat("00-", kTraceId, "-", kClientSpan, "-01"),
                      WriteTempFile(doc)}));
  ASSERT_EQ(run.exit_code, 0) << run.err;
  Stop(worker);
  Stop(fleet.coordinator());
  const json* call = nullptr;
  std::map<std::string, std::string> part_span;  // part name -> span id
  std::vector<json> attempts;
  std::vector<Receiver::Span> spans = receiver.Spans();
  for (const Receiver::Span& s : spans) {
    if (s.span["name"] == "aggregate") call = &s.span;
    if (s.span["name"] == "aggregate part")
      part_span[StringAttr(s.span, "fetchfleet.part.name")] =
          Hex(s.span["spanId"]);
    if (s.span["name"] == "fetch attempt") attempts.push_back(s.span);
  }
  ASSERT_NE(call, nullptr);
  EXPECT_EQ(Hex((*call)["traceId"]), kTraceId);
  EXPECT_EQ(Hex((*call)["parentSpanId"]), kClientSpan);
  ASSERT_EQ(part_span.size(), 2u);
  ASSERT_EQ(attempts.size(), 2u);
  for (const Receiver::Span& s : spans) {
    EXPECT_EQ(Hex(s.span["traceId"]), Hex((*call)["traceId"]));
    if (s.span["name"] == "aggregate part") {
      EXPECT_EQ(Hex(s.span["parentSpanId"]), Hex((*call)["spanId"]));
    }
  }
  // Each part's attempt is that part's child.
  std::set<std::string> parents;
  for (const json& a : attempts) parents.insert(Hex(a["parentSpanId"]));
  EXPECT_EQ(parents, (std::set<std::string>{part_span["a"], part_span["b"]}));
}

TEST(TracingTest, UnsampledAndUntracedRequestsAreNotRecorded) {
  Receiver receiver;
  HttpTestServer upstream;
  Fleet fleet(
      {"--otlp-endpoint", receiver.endpoint(), "--trace-sample-ratio", "0"});
  Subprocess* worker = fleet.AddWorker(
      "w-1",
      {"--otlp-endpoint", receiver.endpoint(), "--trace-sample-ratio", "0"});
  // Unsampled parent: propagated with the flag off, nothing recorded. A
  // request without context on a ratio of 0: no traceparent at all, and a
  // user's own header goes through untouched.
  std::string input = absl::StrCat(
      "{\"id\": \"unsampled\", \"url\": \"", upstream.Url("/echo"),
      "\", \"traceparent\": \"00-", kOwnTraceId, "-", kOwnSpan, "-00\"}\n");
  CommandResult run =
      RunCommand(fleet.Fetchctl({"submit", "-"}), WriteTempFile(input));
  ASSERT_EQ(run.exit_code, 0) << run.err;
  std::string user =
      absl::StrCat("{\"id\": \"user\", \"url\": \"", upstream.Url("/echo"),
                   "\", \"headers\": {\"traceparent\": \"mine\"}}\n");
  CommandResult plain =
      RunCommand(fleet.Fetchctl({"submit", "-"}), WriteTempFile(user));
  ASSERT_EQ(plain.exit_code, 0) << plain.err;
  std::vector<json> results = ParseResults(run.out);
  ASSERT_EQ(results.size(), 1u);
  std::string sent = EchoedHeaders(results[0]).value("traceparent", "");
  EXPECT_EQ(sent.substr(0, 36), absl::StrCat("00-", kOwnTraceId, "-"));
  EXPECT_EQ(sent.substr(52), "-00");
  EXPECT_NE(sent.substr(36, 16), kOwnSpan);  // the attempt's own span id
  std::vector<json> plain_results = ParseResults(plain.out);
  ASSERT_EQ(plain_results.size(), 1u);
  EXPECT_EQ(EchoedHeaders(plain_results[0]).value("traceparent", ""), "mine");
  Stop(worker);
  Stop(fleet.coordinator());
  EXPECT_TRUE(receiver.Spans().empty()) << receiver.Spans().size();
}

TEST(TracingTest, BadTraceparentIsAPerRequestErrorAndABadFlagAUsageError) {
  HttpTestServer upstream;
  Fleet fleet;
  fleet.AddWorker("w-1");
  std::string input = absl::StrCat(
      "{\"id\": \"bad\", \"url\": \"", upstream.Url("/echo"),
      "\", \"traceparent\": \"00-", kOwnTraceId, "-0000000000000000-01\"}\n",
      "{\"id\": \"good\", \"url\": \"", upstream.Url("/echo"), "\"}\n");
  CommandResult run =
      RunCommand(fleet.Fetchctl({"submit", "-"}), WriteTempFile(input));
  std::map<std::string, json> results;
  for (const json& r : ParseResults(run.out)) results[r["id"]] = r;
  ASSERT_EQ(results.size(), 2u) << run.out;
  EXPECT_EQ(results["bad"]["error"], "invalid_request");
  EXPECT_NE(results["bad"]["error_message"].get<std::string>().find(
                "parent-id is all zeros"),
            std::string::npos)
      << results["bad"];
  EXPECT_TRUE(results["good"]["ok"].get<bool>());
  // Without --otlp-endpoint and without a context nothing is added.
  EXPECT_EQ(EchoedHeaders(results["good"]).count("traceparent"), 0u);
  CommandResult bad_flag =
      RunCommand(fleet.Fetchctl({"submit", "--traceparent", "00-abc", "-"}),
                 WriteTempFile(upstream.Url("/echo") + "\n"));
  EXPECT_EQ(bad_flag.exit_code, 2) << bad_flag.err;
  EXPECT_NE(bad_flag.err.find("--traceparent"), std::string::npos)
      << bad_flag.err;
}

}  // namespace
}  // namespace fetchfleet::testing
