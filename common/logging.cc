#include "common/logging.h"

#include <unistd.h>

#include <atomic>
#include <cstring>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace fetchfleet {
namespace {

std::atomic<int> g_level{static_cast<int>(LogLevel::kInfo)};
std::mutex g_component_mu;
std::string* g_component = new std::string("fetchfleet");

const char* LevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "DEBUG";
    case LogLevel::kInfo:
      return "INFO";
    case LogLevel::kWarning:
      return "WARN";
    case LogLevel::kError:
      return "ERROR";
  }
  return "?";
}

}  // namespace

void SetLogLevel(LogLevel level) { g_level.store(static_cast<int>(level)); }

bool ParseLogLevel(absl::string_view name, LogLevel* level) {
  if (name == "debug")
    *level = LogLevel::kDebug;
  else if (name == "info")
    *level = LogLevel::kInfo;
  else if (name == "warning" || name == "warn")
    *level = LogLevel::kWarning;
  else if (name == "error")
    *level = LogLevel::kError;
  else
    return false;
  return true;
}

bool LogEnabled(LogLevel level) {
  return static_cast<int>(level) >= g_level.load();
}

void SetLogComponent(absl::string_view component) {
  std::lock_guard<std::mutex> lock(g_component_mu);
  *g_component = std::string(component);
}

void WriteLogLine(LogLevel level, const char* file, int line,
                  absl::string_view message) {
  const char* base = std::strrchr(file, '/');
  base = base ? base + 1 : file;
  std::string component;
  {
    std::lock_guard<std::mutex> lock(g_component_mu);
    component = *g_component;
  }
  std::string text =
      absl::StrCat(absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(),
                                    absl::UTCTimeZone()),
                   " ", LevelName(level), " ", component, " ", base, ":", line,
                   "] ", message, "\n");
  // One write per line: lines of concurrent threads do not interleave.
  ssize_t unused = ::write(STDERR_FILENO, text.data(), text.size());
  (void)unused;
}

}  // namespace fetchfleet
