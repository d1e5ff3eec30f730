// Logging: one line per event to stderr (containers collect stderr), written
// with a single write(2) so lines from different threads never interleave.
// Thread-safe.
//
//   FF_LOG(INFO) << "worker " << name << " connected";
#pragma once

#include <sstream>
#include <string>

#include "absl/strings/string_view.h"

namespace fetchfleet {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

// SetLogLevel sets the least severe level that is written (default kInfo).
void SetLogLevel(LogLevel level);
// ParseLogLevel accepts debug, info, warning, error.
bool ParseLogLevel(absl::string_view name, LogLevel* level);
bool LogEnabled(LogLevel level);
// SetLogComponent names the process in every line, e.g. "coordinator".
void SetLogComponent(absl::string_view component);
void WriteLogLine(LogLevel level, const char* file, int line,
                  absl::string_view message);

// LogMessage collects one line and writes it when destroyed.
class LogMessage {
 public:
  LogMessage(LogLevel level, const char* file, int line)
      : level_(level), file_(file), line_(line) {}
  ~LogMessage() { WriteLogLine(level_, file_, line_, stream_.str()); }
  std::ostream& stream() { return stream_; }

 private:
  LogLevel level_;
  const char* file_;
  int line_;
  std::ostringstream stream_;
};

// LogVoidify turns the stream expression into void, to match the ternary's
// other arm.
struct LogVoidify {
  void operator&(std::ostream&) {}
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
                .stream()
