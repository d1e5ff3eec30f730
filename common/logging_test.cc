#include "common/logging.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace fetchfleet {
namespace {

using nlohmann::json;

constexpr char kTime[] = "2026-12-02T17:00:00.123Z";

json JsonLine(absl::string_view message, const std::vector<LogField>& fields,
              LogLevel level = LogLevel::kInfo) {
  std::string line = FormatLogLine(LogFormat::kJson, kTime, level,
                                   "coordinator", "job.cc:12", message, fields);
  EXPECT_EQ(line.back(), '\n');
  EXPECT_EQ(line.find('\n'), line.size() - 1) << "one line: " << line;
  // nlohmann rejects invalid UTF-8 and raw control characters.
  json parsed = json::parse(line, nullptr, /*allow_exceptions=*/false);
  EXPECT_TRUE(parsed.is_object()) << line;
  return parsed;
}

TEST(LogJsonTest, HasTheFixedMembersAndTheFields) {
  json j =
      JsonLine("job ended",
               {LogField("job", "j-1"), LogField("worker", std::string("w-1")),
                LogField("done", uint64_t{28}), LogField("cancelled", false)});
  EXPECT_EQ(j["time"], kTime);
  EXPECT_EQ(j["level"], "info");
  EXPECT_EQ(j["component"], "coordinator");
  EXPECT_EQ(j["source"], "job.cc:12");
  EXPECT_EQ(j["message"], "job ended");
  EXPECT_EQ(j["job"], "j-1");
  EXPECT_EQ(j["worker"], "w-1");
  EXPECT_EQ(j["done"], 28);  // a number, not a string
  EXPECT_EQ(j["cancelled"], false);
}

TEST(LogJsonTest, LevelNames) {
  EXPECT_EQ(JsonLine("m", {}, LogLevel::kDebug)["level"], "debug");
  EXPECT_EQ(JsonLine("m", {}, LogLevel::kInfo)["level"], "info");
  EXPECT_EQ(JsonLine("m", {}, LogLevel::kWarning)["level"], "warning");
  EXPECT_EQ(JsonLine("m", {}, LogLevel::kError)["level"], "error");
}

TEST(LogJsonTest, EscapesQuotesBackslashesAndControlCharacters) {
  std::string nasty = "a\"b\\c\nd\re\tf";
  nasty.push_back('\0');
  nasty += "\x01\x1f\x7f}";
  json j = JsonLine(nasty, {LogField("key", nasty)});
  EXPECT_EQ(j["message"], nasty);
  EXPECT_EQ(j["key"], nasty);
}

TEST(LogJsonTest, InvalidUtf8IsReplacedAndValidUtf8Kept) {
  // A lone continuation byte, a truncated sequence, an overlong '/', a
  // surrogate, and valid two-, three- and four-byte characters.
  std::string text = "x\x80y\xe2\x82z\xc0\xaf\xed\xa0\x80|é€😀";
  json j = JsonLine(text, {LogField("key", text)});
  std::string expected =
      "x\uFFFDy\uFFFD\uFFFDz\uFFFD\uFFFD\uFFFD\uFFFD\uFFFD|é€😀";
  EXPECT_EQ(j["message"], expected);
  EXPECT_EQ(j["key"], expected);
}

TEST(LogJsonTest, EveryByteMakesAValidLine) {
  std::string all;
  for (int c = 0; c < 256; ++c) all.push_back(static_cast<char>(c));
  json j = JsonLine(all, {LogField("key", all)});
  EXPECT_TRUE(j["message"].is_string());
}

TEST(LogJsonTest, AFieldCannotShadowAFixedMember) {
  json j = JsonLine("real",
                    {LogField("message", "fake"), LogField("level", "fake")});
  EXPECT_EQ(j["message"], "real");
  EXPECT_EQ(j["level"], "info");
  EXPECT_EQ(j["message_"], "fake");
  EXPECT_EQ(j["level_"], "fake");
}

TEST(LogJsonTest, NumbersThatJsonCannotHoldAreStrings) {
  json j = JsonLine("m", {LogField("ms", 41.5), LogField("nan", std::nan("")),
                          LogField("neg", int64_t{-3})});
  EXPECT_DOUBLE_EQ(j["ms"].get<double>(), 41.5);
  EXPECT_TRUE(j["nan"].is_string());
  EXPECT_EQ(j["neg"], -3);
}

TEST(LogTextTest, FieldsAreKeyValueAfterTheMessage) {
  std::string line = FormatLogLine(
      LogFormat::kText, kTime, LogLevel::kWarning, "worker", "worker.cc:7",
      "lost the coordinator",
      {LogField("worker", "w-1"), LogField("held", 3),
       LogField("why", "stream \"broke\"\nagain"), LogField("empty", "")});
  EXPECT_EQ(
      line,
      "2026-12-02T17:00:00.123Z WARN worker worker.cc:7] lost the "
      "coordinator worker=w-1 held=3 why=\"stream \\\"broke\\\"\\nagain\" "
      "empty=\"\"\n");
}

TEST(LogTextTest, WithoutFieldsTheLineIsAsBefore) {
  EXPECT_EQ(FormatLogLine(LogFormat::kText, kTime, LogLevel::kInfo,
                          "coordinator", "main.cc:96", "listening on h:1", {}),
            "2026-12-02T17:00:00.123Z INFO coordinator main.cc:96] listening "
            "on h:1\n");
}

TEST(LogTraceIdTest, AnEmptyTraceIdAddsNothing) {
  // Through LogMessage, which drops omit_if_empty fields.
  SetLogLevel(LogLevel::kError);
  int evaluated = 0;
  auto count = [&] {
    ++evaluated;
    return std::string("v");
  };
  // Not logged: nothing after FF_LOG is evaluated, fields included.
  FF_LOG(INFO) << LogField("job", count()) << count();
  EXPECT_EQ(evaluated, 0);
  SetLogLevel(LogLevel::kInfo);

  LogField field = LogTraceId("");
  EXPECT_TRUE(field.omit_if_empty);
  EXPECT_EQ(field.key, kLogTraceId);
  json j = JsonLine("m", {LogTraceId("4bf92f3577b34da6a3ce929d0e0e4736")});
  EXPECT_EQ(j["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
}

TEST(LogFormatTest, Parse) {
  LogFormat format;
  ASSERT_TRUE(ParseLogFormat("json", true, &format));
  EXPECT_EQ(format, LogFormat::kJson);
  ASSERT_TRUE(ParseLogFormat("text", false, &format));
  EXPECT_EQ(format, LogFormat::kText);
  ASSERT_TRUE(ParseLogFormat("auto", false, &format));
  EXPECT_EQ(format, LogFormat::kJson);
  ASSERT_TRUE(ParseLogFormat("auto", true, &format));
  EXPECT_EQ(format, LogFormat::kText);
  EXPECT_FALSE(ParseLogFormat("JSON", false, &format));
  EXPECT_FALSE(ParseLogFormat("", false, &format));
}

}  // namespace
}  // namespace fetchfleet
