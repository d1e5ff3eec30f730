#include "coordinator/aggregate.h"

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace fetchfleet::coordinator {
namespace {

using Json = nlohmann::json;

constexpr char kThreeParts[] = R"({"parts": [
  {"name": "user", "url": "http://users.example/u/1", "required": true},
  {"name": "product", "url": "http://products.example/p/7"},
  {"name": "recs", "url": "http://recs.example/r/1", "required": false,
   "fallback": [], "timeout_ms": 5000, "rate_key": "recs"}],
  "deadline_ms": 800})";

v1::FetchResult Ok(const std::string& body) {
  v1::FetchResult r;
  r.set_ok(true);
  r.set_status(200);
  r.set_body(body);
  r.set_worker("w-1");
  return r;
}

v1::FetchResult Failed(v1::ErrorKind kind, int status = 0) {
  v1::FetchResult r;
  r.set_error(kind);
  r.set_status(status);
  r.set_error_message("it broke");
  return r;
}

TEST(ParseAggregate, ReadsPartsDefaultsAndDeadline) {
  absl::StatusOr<AggregatePlan> plan = ParseAggregate(kThreeParts);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->deadline, absl::Milliseconds(800));
  ASSERT_EQ(plan->parts.size(), 3u);
  EXPECT_EQ(plan->parts[0].name, "user");
  EXPECT_TRUE(plan->parts[0].required);
  EXPECT_TRUE(plan->parts[1].required);  // required unless it says otherwise
  EXPECT_FALSE(plan->parts[2].required);
  EXPECT_EQ(plan->parts[2].fallback, "[]");
  EXPECT_EQ(plan->parts[1].fallback, "null");
  // Each attempt ends by the deadline; the host is the default rate key.
  EXPECT_EQ(plan->parts[2].request.timeout_ms(), 800u);
  EXPECT_EQ(plan->parts[0].request.rate_key(), "users.example");
  EXPECT_EQ(plan->parts[2].request.rate_key(), "recs");
  EXPECT_EQ(plan->parts[0].request.max_attempts(), kDefaultPartAttempts);
  EXPECT_EQ(plan->parts[2].request.index(), 2u);
}

TEST(ParseAggregate, NamesTheBadPart) {
  auto error = [](const std::string& doc) {
    absl::StatusOr<AggregatePlan> plan = ParseAggregate(doc);
    EXPECT_FALSE(plan.ok()) << doc;
    return std::string(plan.status().message());
  };
  EXPECT_EQ(error("[1]"), "the document is not a JSON object");
  EXPECT_EQ(error(R"({"parts": []})"), "\"parts\" must be a non-empty array");
  EXPECT_EQ(error(R"({"parts": [{"url": "http://a/"}]})"),
            "parts[0]: \"name\" must be a string of 1 to 128 bytes");
  EXPECT_NE(error(R"({"parts": [{"name": "a", "url": "ftp://a/"}]})")
                .find("part \"a\": "),
            std::string::npos);
  EXPECT_EQ(error(R"({"parts": [{"name": "a", "url": "http://a/"},
                               {"name": "a", "url": "http://b/"}]})"),
            "part \"a\": the name is used twice");
  EXPECT_EQ(error(R"({"parts": [{"name": "errors", "url": "http://a/"}]})"),
            "part \"errors\": that name is reserved");
  EXPECT_NE(error(R"({"parts": [{"name": "a", "url": "http://a/"}],
                      "deadline_ms": 0})")
                .find("deadline_ms"),
            std::string::npos);
  EXPECT_NE(error(R"({"parts": [{"name": "a", "url": "http://a/"}],
                      "deadline": 5})")
                .find("unknown field \"deadline\""),
            std::string::npos);
}

TEST(MergeAggregate, AllHealthy) {
  AggregatePlan plan = *ParseAggregate(kThreeParts);
  std::vector<PartOutcome> outcomes = {
      {Ok(R"({"id": 1})"), absl::Milliseconds(20)},
      {Ok(R"({"sku": "x"})"), absl::Milliseconds(30)},
      {Ok("[1, 2]"), absl::Milliseconds(25)}};
  v1::AggregateResponse response =
      MergeAggregate(plan, outcomes, absl::Milliseconds(31));
  EXPECT_TRUE(response.ok());
  EXPECT_EQ(response.document(),
            R"({"user":{"id":1},"product":{"sku":"x"},"recs":[1,2],)"
            R"("degraded":[],"errors":{}})");
  EXPECT_EQ(response.parts(1).latency_ms(), 30);
}

TEST(MergeAggregate, OptionalPartFallsBack) {
  AggregatePlan plan = *ParseAggregate(kThreeParts);
  std::vector<PartOutcome> outcomes = {
      {Ok(R"({"id": 1})"), absl::Milliseconds(20)},
      {Ok(R"({"sku": "x"})"), absl::Milliseconds(30)},
      {Failed(v1::ERROR_CIRCUIT_OPEN), absl::Milliseconds(1)}};
  v1::AggregateResponse response =
      MergeAggregate(plan, outcomes, absl::Milliseconds(31));
  EXPECT_TRUE(response.ok());
  Json doc = Json::parse(response.document());
  EXPECT_EQ(doc["recs"], Json::array());
  EXPECT_EQ(doc["degraded"], Json::array({"recs"}));
  EXPECT_EQ(doc["errors"]["recs"], "circuit_open");
  EXPECT_TRUE(response.parts(2).degraded());
}

TEST(MergeAggregate, FailedRequiredPartFailsTheCall) {
  AggregatePlan plan = *ParseAggregate(kThreeParts);
  std::vector<PartOutcome> outcomes = {
      {Failed(v1::ERROR_HTTP_STATUS, 500), absl::Milliseconds(20)},
      {Ok("not json"), absl::Milliseconds(30)},
      {std::nullopt, absl::Milliseconds(800)}};
  v1::AggregateResponse response =
      MergeAggregate(plan, outcomes, absl::Milliseconds(800));
  EXPECT_FALSE(response.ok());
  Json doc = Json::parse(response.document());
  EXPECT_EQ(doc["error"], "required part \"user\" failed: http_status");
  EXPECT_EQ(doc["errors"]["product"], "invalid_json");
  EXPECT_EQ(doc["errors"]["recs"], "timeout");
  EXPECT_EQ(doc["degraded"], Json::array({"recs"}));
  EXPECT_FALSE(doc.contains("user"));
}

// A document nested 100,000 deep used to overflow the coordinator's stack
// (SIGSEGV) while a part was copied or dumped; it is refused up front.
TEST(ParseAggregate, DeepNestingIsRefusedNotACrash) {
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  absl::StatusOr<AggregatePlan> in_parts = ParseAggregate(
      R"({"parts": [{"name": "a", "url": "http://a/", "x": )" + deep + "}]}");
  ASSERT_FALSE(in_parts.ok());
  EXPECT_EQ(in_parts.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(in_parts.status().message().find("deeper than 64 levels"),
            std::string::npos)
      << in_parts.status().message();
  absl::StatusOr<AggregatePlan> in_fallback = ParseAggregate(
      R"({"parts": [{"name": "a", "url": "http://a/", "required": false,
                     "fallback": )" +
      deep + "}]}");
  EXPECT_FALSE(in_fallback.ok());
  std::string objects;
  for (int i = 0; i < 100000; ++i) objects += R"({"parts":)";
  EXPECT_FALSE(ParseAggregate(objects).ok());
  // Within the bound, nesting is kept as given.
  absl::StatusOr<AggregatePlan> ok = ParseAggregate(
      R"({"parts": [{"name": "a", "url": "http://a/", "required": false,
                     "fallback": [[[1]]]}]})");
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->parts[0].fallback, "[[[1]]]");
}

// An upstream is as hostile as a client: a deeply nested body is a failed
// part, not a crash while the answer is merged.
TEST(MergeAggregate, DeeplyNestedBodyIsInvalidJson) {
  AggregatePlan plan = *ParseAggregate(kThreeParts);
  const std::string deep = std::string(500000, '[') + std::string(500000, ']');
  std::vector<PartOutcome> outcomes = {
      {Ok(R"({"id": 1})"), absl::Milliseconds(20)},
      {Ok(R"({"sku": "x"})"), absl::Milliseconds(30)},
      {Ok(deep), absl::Milliseconds(25)}};
  v1::AggregateResponse response =
      MergeAggregate(plan, outcomes, absl::Milliseconds(31));
  EXPECT_TRUE(response.ok());
  Json doc = Json::parse(response.document());
  EXPECT_EQ(doc["errors"]["recs"], "invalid_json");
  EXPECT_NE(response.parts(2).error_message().find("deeper than 64"),
            std::string::npos);
}

}  // namespace
}  // namespace fetchfleet::coordinator
