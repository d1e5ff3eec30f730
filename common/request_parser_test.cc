#include "common/request_parser.h"

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace fetchfleet {
namespace {

ParsedLine Parse(absl::string_view line, uint64_t line_number = 7) {
  return ParseRequestLine(line, line_number, line_number - 1, v1::JobOptions());
}

TEST(RequestParserTest, SkipsBlankAndCommentLines) {
  EXPECT_EQ(Parse("").kind, ParsedLine::Kind::kSkip);
  EXPECT_EQ(Parse("   \t").kind, ParsedLine::Kind::kSkip);
  EXPECT_EQ(Parse("# a comment").kind, ParsedLine::Kind::kSkip);
}

TEST(RequestParserTest, BareUrlGetsDefaults) {
  ParsedLine p = Parse("https://API.Example.com:8443/users/u1?x=1\r");
  ASSERT_EQ(p.kind, ParsedLine::Kind::kRequest) << p.error.error_message();
  EXPECT_EQ(p.request.id(), "7");
  EXPECT_EQ(p.request.index(), 6u);
  EXPECT_EQ(p.request.method(), "GET");
  EXPECT_EQ(p.request.rate_key(), "api.example.com");
  EXPECT_EQ(p.request.max_attempts(), kDefaultMaxAttempts);
  EXPECT_EQ(p.request.timeout_ms(), kDefaultTimeoutMs);
}

TEST(RequestParserTest, JsonObjectWithAllFields) {
  ParsedLine p = Parse(
      R"({"id": "u1", "url": "http://[::1]:8080/x", "method": "post", "headers": {"Accept": "application/json"},)"
      R"( "body": "{}", "rate_key": "example-api", "max_attempts": 5, "timeout_ms": 2000})");
  ASSERT_EQ(p.kind, ParsedLine::Kind::kRequest) << p.error.error_message();
  EXPECT_EQ(p.request.id(), "u1");
  EXPECT_EQ(p.request.method(), "POST");
  ASSERT_EQ(p.request.headers_size(), 1);
  EXPECT_EQ(p.request.headers(0).name(), "Accept");
  EXPECT_EQ(p.request.body(), "{}");
  EXPECT_EQ(p.request.rate_key(), "example-api");
  EXPECT_EQ(p.request.max_attempts(), 5u);
  EXPECT_EQ(p.request.timeout_ms(), 2000u);
}

TEST(RequestParserTest, IntegerIdAndHostKeyForIpv6) {
  ParsedLine p = Parse(R"({"id": 42, "url": "http://[::1]:8080/x"})");
  ASSERT_EQ(p.kind, ParsedLine::Kind::kRequest);
  EXPECT_EQ(p.request.id(), "42");
  EXPECT_EQ(p.request.rate_key(), "::1");
}

struct BadLine {
  std::string line;
  v1::ErrorKind kind;
  const char* message_part;
};

class BadLineTest : public ::testing::TestWithParam<BadLine> {};

TEST_P(BadLineTest, YieldsOwnErrorNamingLineAndProblem) {
  ParsedLine p = Parse(GetParam().line);
  ASSERT_EQ(p.kind, ParsedLine::Kind::kError);
  EXPECT_EQ(p.error.error(), GetParam().kind);
  EXPECT_EQ(p.error.index(), 6u);
  EXPECT_NE(p.error.error_message().find("line 7: "), std::string::npos)
      << p.error.error_message();
  EXPECT_NE(p.error.error_message().find(GetParam().message_part),
            std::string::npos)
      << p.error.error_message();
}

INSTANTIATE_TEST_SUITE_P(
    Corpus, BadLineTest,
    ::testing::Values(
        BadLine{"not a url", v1::ERROR_INVALID_REQUEST, "whitespace"},
        BadLine{"example.com/path", v1::ERROR_INVALID_REQUEST,
                "not a valid absolute URL"},
        BadLine{"file:///etc/passwd", v1::ERROR_INVALID_REQUEST,
                "scheme \"file\""},
        BadLine{"ftp://example.com/x", v1::ERROR_INVALID_REQUEST,
                "scheme \"ftp\""},
        BadLine{"gopher://example.com/", v1::ERROR_INVALID_REQUEST,
                "only http and https"},
        BadLine{"http://:80/x", v1::ERROR_INVALID_REQUEST, "URL"},
        BadLine{"{\"url\": \"http://a.example/\"", v1::ERROR_INVALID_REQUEST,
                "not valid JSON"},
        BadLine{"{\"urll\": \"http://a.example/\"}", v1::ERROR_INVALID_REQUEST,
                "unknown field \"urll\""},
        BadLine{"{\"id\": \"x\"}", v1::ERROR_INVALID_REQUEST,
                "\"url\" is missing"},
        BadLine{"[1,2]", v1::ERROR_INVALID_REQUEST, "must be an object"},
        BadLine{"{\"url\": \"http://a.example/\", \"method\": \"GE T\"}",
                v1::ERROR_INVALID_REQUEST, "not an HTTP method"},
        BadLine{"{\"url\": \"http://a.example/\", \"headers\": {\"X\": "
                "\"a\\r\\nInjected: 1\"}}",
                v1::ERROR_INVALID_REQUEST, "control character"},
        BadLine{"{\"url\": \"http://a.example/\", \"headers\": {\"Bad Name\": "
                "\"v\"}}",
                v1::ERROR_INVALID_REQUEST, "not a valid token"},
        BadLine{"{\"url\": \"http://a.example/\", \"max_attempts\": 0}",
                v1::ERROR_INVALID_REQUEST, "max_attempts"},
        BadLine{"{\"url\": \"http://a.example/\", \"timeout_ms\": \"fast\"}",
                v1::ERROR_INVALID_REQUEST, "timeout_ms"},
        BadLine{"http://a.example/caf\xc3\xa9", v1::ERROR_INVALID_REQUEST,
                "is not ASCII"},
        BadLine{"http://caf\xc3\xa9.example/", v1::ERROR_INVALID_REQUEST,
                "punycode the host"},
        BadLine{"{\"url\": 5}", v1::ERROR_INVALID_REQUEST,
                "\"url\" must be a string"},
        BadLine{"{\"url\": \"http://a.example/\", \"rate_key\": \"\"}",
                v1::ERROR_INVALID_REQUEST, "rate key is empty"},
        BadLine{"{\"url\": \"http://a.example/\", \"rate_key\": \"a b\"}",
                v1::ERROR_INVALID_REQUEST, "space or control character"},
        BadLine{"{\"url\": \"http://a.example/\", \"method\": \"connect\"}",
                v1::ERROR_INVALID_REQUEST, "CONNECT is not allowed"},
        BadLine{"{\"url\": \"http://a.example/\", \"method\": \"TRACE\"}",
                v1::ERROR_INVALID_REQUEST, "TRACE is not allowed"},
        BadLine{"{\"url\": \"http://a.example/\", \"traceparent\": "
                "\"00-00000000000000000000000000000000-00f067aa0ba902b7-01\"}",
                v1::ERROR_INVALID_REQUEST, "trace-id is all zeros"},
        BadLine{"{\"url\": \"http://a.example/\", \"traceparent\": 7}",
                v1::ERROR_INVALID_REQUEST, "\"traceparent\" must be a string"},
        BadLine{"{\"url\": \"http://a.example/\", \"tracestate\": \"a=1\"}",
                v1::ERROR_INVALID_REQUEST, "needs a \"traceparent\""},
        BadLine{"{\"url\": \"http://a.example/\", \"x\": " +
                    std::string(100000, '[') + std::string(100000, ']') + "}",
                v1::ERROR_INVALID_REQUEST, "deeper than 64 levels"}));

TEST(RequestParserTest, TraceContextIsKept) {
  ParsedLine p = Parse(
      "{\"url\": \"http://a.example/\", \"traceparent\": "
      "\"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\", "
      "\"tracestate\": \"rojo=1\"}");
  ASSERT_EQ(p.kind, ParsedLine::Kind::kRequest) << p.error.error_message();
  EXPECT_EQ(p.request.traceparent(),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  EXPECT_EQ(p.request.tracestate(), "rojo=1");
}

TEST(RequestParserTest, JobTraceparentIsValidated) {
  v1::JobOptions options;
  options.set_traceparent("00-xyz");
  EXPECT_FALSE(ValidateJobOptions(options).ok());
  options.set_traceparent(
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  EXPECT_TRUE(ValidateJobOptions(options).ok());
  options.set_tracestate("no-equals");
  EXPECT_FALSE(ValidateJobOptions(options).ok());
}

// Fields are read in name order; an error in one sorting before "id" used to
// lose the id.
TEST(RequestParserTest, ErrorKeepsTheIdWhateverTheFieldOrder) {
  ParsedLine p =
      Parse("{\"url\": \"http://a.example/\", \"aaa\": 1, \"id\": \"mine\"}");
  ASSERT_EQ(p.kind, ParsedLine::Kind::kError);
  EXPECT_EQ(p.error.id(), "mine");
  EXPECT_NE(p.error.error_message().find("unknown field \"aaa\""),
            std::string::npos);
  p = Parse("{\"body\": 5, \"id\": 42, \"url\": \"http://a.example/\"}");
  ASSERT_EQ(p.kind, ParsedLine::Kind::kError);
  EXPECT_EQ(p.error.id(), "42");
}

// The error says which URL is wrong without its password; the result keeps
// the URL as sent (the submitter's own data).
TEST(RequestParserTest, UrlErrorsHideTheUserinfo) {
  for (const char* url :
       {"ftp://bob:hunter2@files.example/x", "http://bob:hunter2@/x",
        "http://bob:hunter2@exa mple.com/", "http://bob:hunter2@ex\u00e9.com/",
        "bob:hunter2@example.com/x"}) {
    ParsedLine p = Parse(absl::StrCat("{\"url\": \"", url, "\"}"));
    ASSERT_EQ(p.kind, ParsedLine::Kind::kError) << url;
    const std::string& message = p.error.error_message();
    EXPECT_EQ(message.find("hunter2"), std::string::npos) << message;
    EXPECT_NE(message.find("***@"), std::string::npos) << message;
  }
  ParsedLine p = Parse("ftp://bob:hunter2@files.example/x");
  ASSERT_EQ(p.kind, ParsedLine::Kind::kError);
  EXPECT_EQ(p.error.url(), "ftp://bob:hunter2@files.example/x");
  auto host = ValidateFetchUrl("gopher://u:hunter2@h/");
  EXPECT_EQ(host.status().message().find("hunter2"), absl::string_view::npos)
      << host.status();
}

// Header errors name the header, never its value.
TEST(RequestParserTest, HeaderErrorsNeverQuoteTheValue) {
  ParsedLine p = Parse(
      "{\"url\": \"http://a.example/\", \"headers\": {\"Authorization\": "
      "\"Bearer hunter2\\r\\nX: y\"}}");
  ASSERT_EQ(p.kind, ParsedLine::Kind::kError);
  EXPECT_NE(p.error.error_message().find("Authorization"), std::string::npos);
  EXPECT_EQ(p.error.error_message().find("hunter2"), std::string::npos)
      << p.error.error_message();
}

TEST(RequestParserTest, HugeHeaderIsRefusedWithItsSize) {
  std::string line =
      "{\"url\": \"http://a.example/\", \"headers\": {\"X-Big\": \"" +
      std::string(200 * 1024, 'a') + "\"}}";
  ParsedLine p = Parse(line);
  ASSERT_EQ(p.kind, ParsedLine::Kind::kError);
  EXPECT_NE(p.error.error_message().find("204800 bytes"), std::string::npos)
      << p.error.error_message();
}

TEST(RequestParserTest, OversizedLineAndBodyAreTooLarge) {
  ParsedLine p = Parse("http://a.example/" + std::string(kMaxLineBytes, 'a'));
  EXPECT_EQ(p.error.error(), v1::ERROR_TOO_LARGE);
  std::string body_line = "{\"url\": \"http://a.example/\", \"body\": \"" +
                          std::string(kMaxRequestBodyBytes + 1, 'b') + "\"}";
  p = Parse(body_line);
  EXPECT_EQ(p.error.error(), v1::ERROR_TOO_LARGE);
}

TEST(RequestParserTest, JobOptionsAreBounded) {
  v1::JobOptions options;
  EXPECT_TRUE(ValidateJobOptions(options).ok());
  options.set_body_cap_bytes(~uint64_t{0});
  absl::Status status = ValidateJobOptions(options);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("body_cap_bytes"), std::string::npos);
  options.set_body_cap_bytes(32 << 20);
  EXPECT_TRUE(ValidateJobOptions(options).ok());
  options.set_timeout_ms(kMaxTimeoutMs + 1);
  EXPECT_FALSE(ValidateJobOptions(options).ok());
  options.set_timeout_ms(0);
  options.set_max_attempts(kMaxAttemptsLimit + 1);
  EXPECT_FALSE(ValidateJobOptions(options).ok());
}

TEST(RequestParserTest, JobDefaultsApply) {
  v1::JobOptions options;
  options.set_max_attempts(7);
  options.set_timeout_ms(1234);
  ParsedLine p = ParseRequestLine("http://a.example/", 1, 0, options);
  EXPECT_EQ(p.request.max_attempts(), 7u);
  EXPECT_EQ(p.request.timeout_ms(), 1234u);
}

}  // namespace
}  // namespace fetchfleet
