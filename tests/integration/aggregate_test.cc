// The gateway end to end: `fetchctl aggregate` against a real coordinator,
// three real workers sharing breakers through a real redis-server, and a local
// HTTP server playing the user, product and recommendation services.
#include <regex>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tests/integration/fleet.h"
#include "tests/testing/http_test_server.h"
#include "tests/testing/redis_server.h"
#include "tests/testing/timing.h"

namespace fetchfleet::testing {
namespace {

using nlohmann::json;

struct Part {
  Part(std::string name, std::string path, bool required = true,
       std::string fallback = "", std::string rate_key = "")
      : name(std::move(name)),
        path(std::move(path)),
        required(required),
        fallback(std::move(fallback)),
        rate_key(std::move(rate_key)) {}
  std::string name;
  std::string path;
  bool required;
  std::string fallback;  // JSON; "" = none
  std::string rate_key;
};

std::string Document(const HttpTestServer& upstream,
                     const std::vector<Part>& parts, int deadline_ms) {
  json doc;
  doc["deadline_ms"] = deadline_ms;
  doc["parts"] = json::array();
  for (const Part& p : parts) {
    json part = {{"name", p.name},
                 {"url", upstream.Url(p.path)},
                 {"required", p.required}};
    if (!p.fallback.empty()) part["fallback"] = json::parse(p.fallback);
    if (!p.rate_key.empty()) part["rate_key"] = p.rate_key;
    doc["parts"].push_back(part);
  }
  return doc.dump();
}

struct Answer {
  int exit_code = -1;
  json doc;
  double latency_ms = -1;  // as the coordinator measured the call
  std::string out;
  std::string err;
};

class AggregateTest : public ::testing::Test {
 protected:
  AggregateTest() : fleet_({"--redis", redis_.url()}) {}

  void AddWorkers(std::vector<std::string> extra = {}) {
    for (int i = 0; i < 3; ++i) {
      std::vector<std::string> flags = {"--redis", redis_.url()};
      flags.insert(flags.end(), extra.begin(), extra.end());
      fleet_.AddWorker(absl::StrCat("w-", i), flags);
    }
  }

  Answer Aggregate(const std::vector<Part>& parts, int deadline_ms = 2000) {
    CommandResult run = RunCommand(fleet_.Fetchctl(
        {"aggregate", WriteTempFile(Document(upstream_, parts, deadline_ms))}));
    Answer answer;
    answer.exit_code = run.exit_code;
    answer.err = run.err;
    answer.out = run.out;
    answer.doc = json::parse(run.out, nullptr, false);
    EXPECT_TRUE(answer.doc.is_object()) << run.out << run.err;
    std::smatch m;
    static const std::regex kLatency("parts in ([0-9.]+) ms");
    if (std::regex_search(run.err, m, kLatency))
      absl::SimpleAtod(m[1].str(), &answer.latency_ms);
    return answer;
  }

  RedisServer redis_;
  HttpTestServer upstream_;
  Fleet fleet_;
};

TEST_F(AggregateTest, AllPartsHealthyLatencyIsTheSlowestPart) {
  AddWorkers();
  // The services answer in 250, 150 and 50 ms: the call takes ~250, not 450.
  Answer a =
      Aggregate({{"user", "/json/ada?delay=250"},
                 {"product", "/json/lamp?delay=150"},
                 {"recommendations", "/json/recs?delay=50", false, "[]"}});
  EXPECT_EQ(a.exit_code, 0) << a.err;
  EXPECT_EQ(a.doc["degraded"], json::array());
  EXPECT_EQ(a.doc["errors"], json::object());
  EXPECT_EQ(a.doc["user"]["name"], "ada") << a.doc.dump();
  std::cerr << "latency " << a.latency_ms << " ms\n";
  EXPECT_GE(a.latency_ms, 250);
  if (kTimed) {
    EXPECT_LT(a.latency_ms, 400);
  }
}

TEST_F(AggregateTest, MergesJsonBodiesInPartOrder) {
  AddWorkers();
  Answer a = Aggregate({{"user", "/json/ada"},
                        {"product", "/json/lamp"},
                        {"recommendations", "/json/recs", false, "[]"}});
  EXPECT_EQ(a.exit_code, 0) << a.err;
  EXPECT_EQ(a.out,
            R"({"user":{"name":"ada"},"product":{"name":"lamp"},)"
            R"("recommendations":{"name":"recs"},"degraded":[],"errors":{}})"
            "\n");
}

// The optional recommendations service goes down: its fallback stands in,
// and once its shared breaker is open the call no longer waits for it.
TEST_F(AggregateTest, OptionalPartFallsBackAndIsFastOnceItsBreakerIsOpen) {
  AddWorkers();
  std::string recs = UniqueKey("recs");
  upstream_.SetDown(recs, true);
  std::vector<Part> parts = {
      {"user", "/json/ada"},
      {"product", "/json/lamp"},
      {"recommendations", "/switch/" + recs, false, R"(["fallback"])", recs}};
  Answer first = Aggregate(parts);
  EXPECT_EQ(first.exit_code, 0) << first.err;
  EXPECT_EQ(first.doc["recommendations"], json::array({"fallback"}));
  EXPECT_EQ(first.doc["degraded"], json::array({"recommendations"}));
  EXPECT_EQ(first.doc["errors"]["recommendations"], "http_status");
  EXPECT_EQ(first.doc["user"]["name"], "ada");
  // Each call tries it twice; ten failures from two workers open it.
  Answer later;
  for (int i = 0; i < 20; ++i) {
    later = Aggregate(parts);
    if (later.doc["errors"]["recommendations"] == "circuit_open") break;
  }
  EXPECT_EQ(later.exit_code, 0) << later.err;
  EXPECT_EQ(later.doc["errors"]["recommendations"], "circuit_open");
  EXPECT_EQ(later.doc["recommendations"], json::array({"fallback"}));
  int calls_then = upstream_.Hits("/switch/" + recs);
  Answer open = Aggregate(parts);
  EXPECT_EQ(upstream_.Hits("/switch/" + recs), calls_then);  // not called
  std::cerr << "first (down) " << first.latency_ms << " ms, breaker open "
            << open.latency_ms << " ms\n";
  if (kTimed) {
    EXPECT_LT(open.latency_ms, 50);
  }
}

TEST_F(AggregateTest, FailedRequiredPartFailsTheCall) {
  AddWorkers();
  std::string users = UniqueKey("users");
  upstream_.SetDown(users, true);
  Answer a = Aggregate({{"user", "/switch/" + users, true, "", users},
                        {"product", "/json/lamp"},
                        {"recommendations", "/json/recs", false, "[]"}});
  EXPECT_EQ(a.exit_code, 1) << a.err;
  EXPECT_EQ(a.doc["error"], "required part \"user\" failed: http_status");
  EXPECT_EQ(a.doc["errors"]["user"], "http_status");
  EXPECT_FALSE(a.doc.contains("product"));
  EXPECT_NE(a.err.find("user: http_status: HTTP 503"), std::string::npos)
      << a.err;
}

// A part slower than the deadline: the call answers at the deadline, the
// part as a timeout (an optional one falls back, a required one fails it).
TEST_F(AggregateTest, PartSlowerThanTheDeadline) {
  AddWorkers();
  absl::Time start = absl::Now();
  Answer optional = Aggregate(
      {{"user", "/json/ada"}, {"recommendations", "/delay/3000", false, "[]"}},
      300);
  absl::Duration took = absl::Now() - start;
  EXPECT_EQ(optional.exit_code, 0) << optional.err;
  EXPECT_EQ(optional.doc["errors"]["recommendations"], "timeout");
  EXPECT_EQ(optional.doc["recommendations"], json::array());
  EXPECT_GE(optional.latency_ms, 290);
  if (kTimed) {
    EXPECT_LT(optional.latency_ms, 450);
    EXPECT_LT(took, absl::Seconds(2));  // fetchctl included
  }
  Answer required =
      Aggregate({{"user", "/delay/3000"}, {"product", "/json/lamp"}}, 300);
  EXPECT_EQ(required.exit_code, 1);
  EXPECT_EQ(required.doc["errors"]["user"], "timeout");
}

// A batch job fills every worker with slow requests; Aggregate calls still
// answer in milliseconds: their parts go ahead of the batch work, into credit
// batch jobs may not use.
TEST_F(AggregateTest, BatchJobDoesNotDelayAggregates) {
  AddWorkers({"--max-inflight", "32"});
  std::string input;
  // Long enough (about 13 s) to outlast ten fetchctl calls under TSan: since
  // a slow response no longer holds its host's other requests back, 300 ran
  // out in 6 s.
  constexpr size_t kBatch = 800;
  for (size_t i = 0; i < kBatch; ++i) {
    absl::StrAppend(&input, "{\"id\": \"b", i, "\", \"url\": \"",
                    upstream_.Url("/delay/1500"), "\"}\n");
  }
  Subprocess batch(fleet_.Fetchctl({"submit", "--no-progress", "-"}),
                   WriteTempFile(input));
  // Wait until the batch job holds the workers.
  absl::Time until = absl::Now() + absl::Seconds(20);
  while (upstream_.Hits("/delay/1500") < 60 && absl::Now() < until)
    absl::SleepFor(absl::Milliseconds(20));
  std::vector<double> latencies;
  for (int i = 0; i < 10; ++i) {
    Answer a = Aggregate({{"user", "/json/ada"},
                          {"product", "/json/lamp"},
                          {"recommendations", "/json/recs", false, "[]"}});
    EXPECT_EQ(a.exit_code, 0) << a.err;
    EXPECT_EQ(a.doc["degraded"], json::array());
    latencies.push_back(a.latency_ms);
  }
  EXPECT_TRUE(batch.Running());  // the batch job was still going throughout
  std::sort(latencies.begin(), latencies.end());
  std::cerr << "aggregate latency during the batch job: median " << latencies[5]
            << " ms, max " << latencies.back() << " ms\n";
  // Without the lane a part would wait for a batch request (1.5 s) to end.
  if (kTimed) {
    EXPECT_LT(latencies.back(), 200);
  }
  EXPECT_EQ(batch.Wait(absl::Seconds(60)), 0);
  EXPECT_EQ(ParseResults(batch.Stdout()).size(), kBatch);
}

TEST_F(AggregateTest, BadDocumentsExitTwoWithTheReason) {
  AddWorkers();
  CommandResult run = RunCommand(fleet_.Fetchctl(
      {"aggregate",
       WriteTempFile(R"({"parts": [{"name": "u", "url": "gopher://x/"}]})")}));
  EXPECT_EQ(run.exit_code, 2);
  EXPECT_NE(run.err.find("part \"u\""), std::string::npos) << run.err;
  run = RunCommand(fleet_.Fetchctl({"aggregate", WriteTempFile("{not json")}));
  EXPECT_EQ(run.exit_code, 2);
  EXPECT_NE(run.err.find("not a JSON object"), std::string::npos) << run.err;
}

}  // namespace
}  // namespace fetchfleet::testing
