#include "common/result_json.h"

#include <cmath>
#include <limits>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace fetchfleet {
namespace {

TEST(ResultJsonTest, OkResultHasContractFieldsInOrder) {
  v1::FetchResult r;
  r.set_seq(17);
  r.set_id("u1");
  r.set_url("https://api.example/users/u1");
  r.set_status(200);
  r.set_ok(true);
  r.set_attempts(1);
  r.set_latency_ms(41.23);
  r.set_body_bytes(8);
  r.set_body("{\"a\":\"\xc3\xa9\"}");
  r.set_worker("w-1");
  std::string out;
  AppendResultJson(r, &out);
  EXPECT_EQ(
      out,
      "{\"seq\": 17, \"id\": \"u1\", \"url\": "
      "\"https://api.example/users/u1\", \"status\": 200, "
      "\"ok\": true, \"attempts\": 1, \"latency_ms\": 41.2, \"body_bytes\": 8, "
      "\"body\": \"{\\\"a\\\":\\\"\xc3\xa9\\\"}\", \"worker\": \"w-1\"}");
  auto parsed = nlohmann::json::parse(out);
  EXPECT_EQ(parsed["body"], "{\"a\":\"\xc3\xa9\"}");
}

TEST(ResultJsonTest, ErrorsBinaryBodiesTruncationAndHeaders) {
  v1::FetchResult r;
  r.set_seq(1);
  r.set_id("x");
  r.set_status(0);
  r.set_error(v1::ERROR_BLOCKED);
  r.set_error_message("address 10.0.0.1 is private\n");
  r.set_body(std::string("\xff\x00\x01", 3));
  r.set_truncated(true);
  auto* h = r.add_headers();
  h->set_name("Content-Type");
  h->set_value("text/plain");
  std::string out;
  AppendResultJson(r, &out);
  auto parsed = nlohmann::json::parse(out);
  EXPECT_EQ(parsed["ok"], false);
  EXPECT_EQ(parsed["error"], "blocked");
  EXPECT_EQ(parsed["error_message"], "address 10.0.0.1 is private\n");
  EXPECT_EQ(parsed["body_base64"], "/wAB");
  EXPECT_FALSE(parsed.contains("body"));
  EXPECT_EQ(parsed["truncated"], true);
  EXPECT_EQ(parsed["headers"]["Content-Type"], "text/plain");
}

// Found by fuzz/result_json_fuzzer.cc: a latency that is not a finite number
// (a worker's measurement, so any double can arrive) came out as "nan" or
// "inf", and the whole line was not JSON; a huge one was cut to 31 digits.
TEST(ResultJsonTest, AnyLatencyStillMakesValidJson) {
  const double kNan = std::numeric_limits<double>::quiet_NaN();
  const double kInf = std::numeric_limits<double>::infinity();
  for (double latency : {kNan, kInf, -kInf, 1e300, -0.04}) {
    SCOPED_TRACE(latency);
    v1::FetchResult r;
    r.set_id("x");
    r.set_ok(true);
    r.set_latency_ms(latency);
    std::string out;
    AppendResultJson(r, &out);
    auto parsed = nlohmann::json::parse(out, nullptr, false);
    ASSERT_FALSE(parsed.is_discarded()) << out;
    ASSERT_TRUE(parsed["latency_ms"].is_number()) << out;
    if (std::isfinite(latency)) {
      EXPECT_NEAR(parsed["latency_ms"].get<double>(), latency,
                  std::abs(latency) * 1e-12 + 0.05);
    } else {
      EXPECT_EQ(parsed["latency_ms"].get<double>(), 0) << out;
    }
  }
}

TEST(Utf8Test, RejectsMalformedSequences) {
  EXPECT_TRUE(IsValidUtf8("plain"));
  EXPECT_TRUE(IsValidUtf8("\xe2\x82\xac \xf0\x9f\x98\x80"));
  EXPECT_FALSE(IsValidUtf8("\xc0\xaf"));          // overlong '/'
  EXPECT_FALSE(IsValidUtf8("\xed\xa0\x80"));      // surrogate
  EXPECT_FALSE(IsValidUtf8("\xe2\x82"));          // truncated
  EXPECT_FALSE(IsValidUtf8("\xf4\x90\x80\x80"));  // > U+10FFFF
}

TEST(Utf8Test, ControlCharactersAreEscaped) {
  std::string out;
  AppendJsonString(std::string("a\x01\"\\\tb", 6), &out);
  EXPECT_EQ(out, "\"a\\u0001\\\"\\\\\\tb\"");
}

}  // namespace
}  // namespace fetchfleet
