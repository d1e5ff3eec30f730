// Logging: one line per event to stderr (containers collect stderr), written
// with a single write(2) so lines from different threads never interleave.
// Two formats: text for people (the default) and JSON, one object per line,
// for collectors. A call site attaches structured fields with LogField; they
// are rendered key=value after the message in text, as members in JSON:
//
//   FF_LOG(INFO) << LogField("job", id) << LogField("worker", name)
//                << "job ended";
//
// Nothing after FF_LOG(...) is evaluated when the level is not logged, fields
// included. Field values and messages are not redacted here: redact a URL or a
// header value (common/redact.h) before it reaches a log line, whatever the
// format. Thread-safe.
#pragma once

#include <cstdint>
#include <ostream>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include "absl/strings/string_view.h"

namespace fetchfleet {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };
enum class LogFormat { kText = 0, kJson = 1 };

// SetLogLevel sets the least severe level that is written (default kInfo).
void SetLogLevel(LogLevel level);
// ParseLogLevel accepts debug, info, warning, error.
bool ParseLogLevel(absl::string_view name, LogLevel* level);
bool LogEnabled(LogLevel level);
// SetLogFormat chooses how lines are written (default kText).
void SetLogFormat(LogFormat format);
// ParseLogFormat accepts text, json, and auto: json when `stderr_is_terminal`
// is false, text when it is true.
bool ParseLogFormat(absl::string_view name, bool stderr_is_terminal,
                    LogFormat* format);
// SetLogComponent names the process in every line, e.g. "coordinator".
void SetLogComponent(absl::string_view component);

// LogField is one structured field of a log line: a key (a literal: [a-z_]
// by convention) and a value. Strings may hold any bytes (JSON escapes them);
// integers and booleans are JSON numbers and booleans.
struct LogField {
  enum class Kind { kString, kNumber, kBool };

  LogField(absl::string_view key, absl::string_view value)
      : key(key), value(value) {}
  LogField(absl::string_view key, const std::string& value)
      : key(key), value(value) {}
  LogField(absl::string_view key, const char* value)
      : key(key), value(value == nullptr ? "" : value) {}
  LogField(absl::string_view key, bool value)
      : key(key), value(value ? "true" : "false"), kind(Kind::kBool) {}
  LogField(absl::string_view key, double value);
  template <typename T, typename = std::enable_if_t<std::is_integral_v<T> &&
                                                    !std::is_same_v<T, bool>>>
  LogField(absl::string_view key, T value)
      : key(key), value(std::to_string(value)), kind(Kind::kNumber) {}

  absl::string_view key;
  std::string value;
  Kind kind = Kind::kString;
  // omit_if_empty: a string field with no value is left out of the line.
  bool omit_if_empty = false;
};

// The field names the code base shares, so that a collector can join lines:
// a job's id, a worker's name, a rate (and breaker) key, and the W3C trace id
// of the request a line is about.
inline constexpr absl::string_view kLogJob = "job";
inline constexpr absl::string_view kLogWorker = "worker";
inline constexpr absl::string_view kLogKey = "key";
inline constexpr absl::string_view kLogTraceId = "trace_id";

// LogTraceId is the hook for trace context: a line about a request that
// carries a trace id (32 lowercase hex digits of a W3C traceparent) adds
// `<< LogTraceId(id)`. An empty id (no trace context) adds nothing, so call
// sites may pass whatever the request holds.
inline LogField LogTraceId(absl::string_view trace_id) {
  LogField field(kLogTraceId, trace_id);
  field.omit_if_empty = true;
  return field;
}

// FormatLogLine renders one line, newline included: what WriteLogLine writes.
// `time_text` is the timestamp as written (RFC 3339, UTC, milliseconds).
// Exposed for tests.
std::string FormatLogLine(LogFormat format, absl::string_view time_text,
                          LogLevel level, absl::string_view component,
                          absl::string_view source, absl::string_view message,
                          const std::vector<LogField>& fields);

void WriteLogLine(LogLevel level, const char* file, int line,
                  absl::string_view message,
                  const std::vector<LogField>& fields = {});

// LogMessage collects one line and writes it when destroyed. Everything
// streamed into it goes to the message, except LogFields.
class LogMessage {
 public:
  LogMessage(LogLevel level, const char* file, int line)
      : level_(level), file_(file), line_(line) {}
  ~LogMessage() { WriteLogLine(level_, file_, line_, stream_.str(), fields_); }
  LogMessage(const LogMessage&) = delete;
  LogMessage& operator=(const LogMessage&) = delete;

  LogMessage& self() { return *this; }

  template <typename T>
  LogMessage& operator<<(const T& value) {
    stream_ << value;
    return *this;
  }
  LogMessage& operator<<(std::ostream& (*manipulator)(std::ostream&)) {
    stream_ << manipulator;
    return *this;
  }
  LogMessage& operator<<(LogField field) {
    if (!field.omit_if_empty || !field.value.empty())
      fields_.push_back(std::move(field));
    return *this;
  }

 private:
  LogLevel level_;
  const char* file_;
  int line_;
  std::ostringstream stream_;
  std::vector<LogField> fields_;
};

// LogVoidify turns the stream expression into void, to match the ternary's
// other arm.
struct LogVoidify {
  void operator&(LogMessage&) {}
};

}  // namespace fetchfleet

#define FF_LOG_LEVEL_DEBUG ::fetchfleet::LogLevel::kDebug
#define FF_LOG_LEVEL_INFO ::fetchfleet::LogLevel::kInfo
#define FF_LOG_LEVEL_WARNING ::fetchfleet::LogLevel::kWarning
#define FF_LOG_LEVEL_ERROR ::fetchfleet::LogLevel::kError

// The ternary (as in glog) keeps FF_LOG safe inside an unbraced if/else.
#define FF_LOG(severity)                                                \
  !::fetchfleet::LogEnabled(FF_LOG_LEVEL_##severity)                    \
      ? (void)0                                                         \
      : ::fetchfleet::LogVoidify() &                                    \
            ::fetchfleet::LogMessage(FF_LOG_LEVEL_##severity, __FILE__, \
                                     __LINE__)                          \
                .self()
