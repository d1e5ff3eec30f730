#include "common/result_json.h"

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
