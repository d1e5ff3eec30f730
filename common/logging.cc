#include "common/logging.h"

#include <unistd.h>

#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace fetchfleet {
namespace {

std::atomic<int> g_level{static_cast<int>(LogLevel::kInfo)};
std::atomic<int> g_format{static_cast<int>(LogFormat::kText)};
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

const char* JsonLevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarning:
      return "warning";
    case LogLevel::kError:
      return "error";
  }
  return "unknown";
}

// Utf8SequenceLength: the length of the well-formed UTF-8 sequence at the
// start of `text` (no overlongs, no surrogates, at most U+10FFFF), or 0.
size_t Utf8SequenceLength(absl::string_view text) {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  unsigned char c = p[0];
  size_t extra;
  uint32_t min;
  uint32_t code;
  if (c < 0x80) return 1;
  if ((c & 0xe0) == 0xc0) {
    extra = 1, min = 0x80, code = c & 0x1f;
  } else if ((c & 0xf0) == 0xe0) {
    extra = 2, min = 0x800, code = c & 0x0f;
  } else if ((c & 0xf8) == 0xf0) {
    extra = 3, min = 0x10000, code = c & 0x07;
  } else {
    return 0;
  }
  if (text.size() <= extra) return 0;
  for (size_t i = 1; i <= extra; ++i) {
    if ((p[i] & 0xc0) != 0x80) return 0;
    code = (code << 6) | (p[i] & 0x3f);
  }
  if (code < min || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff))
    return 0;
  return extra + 1;
}

// AppendJsonText appends `text` as a quoted JSON string: control characters
// escaped, each byte that is not part of well-formed UTF-8 replaced by U+FFFD,
// so that any bytes make a valid line.
void AppendJsonText(absl::string_view text, std::string* out) {
  out->push_back('"');
  size_t i = 0;
  while (i < text.size()) {
    unsigned char c = text[i];
    if (c >= 0x80) {
      size_t n = Utf8SequenceLength(text.substr(i));
      if (n == 0) {
        out->append("\xef\xbf\xbd");  // U+FFFD
        ++i;
      } else {
        out->append(text.data() + i, n);
        i += n;
      }
      continue;
    }
    ++i;
    switch (c) {
      case '"':
        out->append("\\\"");
        break;
      case '\\':
        out->append("\\\\");
        break;
      case '\n':
        out->append("\\n");
        break;
      case '\r':
        out->append("\\r");
        break;
      case '\t':
        out->append("\\t");
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          absl::StrAppendFormat(out, "\\u%04x", c);
        } else {
          out->push_back(static_cast<char>(c));
        }
    }
  }
  out->push_back('"');
}

// AppendTextValue appends a field's value for people: as is when it is one
// plain word, else quoted with Go's %q rules of thumb (", \ and control
// characters escaped), so that a line stays one line and splits unambiguously.
void AppendTextValue(absl::string_view value, std::string* out) {
  bool plain = !value.empty();
  for (unsigned char c : value) {
    if (c <= 0x20 || c == '"' || c == '\\' || c == '=' || c == 0x7f) {
      plain = false;
      break;
    }
  }
  if (plain) {
    out->append(value.data(), value.size());
    return;
  }
  out->push_back('"');
  for (unsigned char c : value) {
    if (c == '"' || c == '\\') {
      out->push_back('\\');
      out->push_back(static_cast<char>(c));
    } else if (c == '\n') {
      out->append("\\n");
    } else if (c < 0x20 || c == 0x7f) {
      absl::StrAppendFormat(out, "\\x%02x", c);
    } else {
      out->push_back(static_cast<char>(c));
    }
  }
  out->push_back('"');
}

// IsReservedKey: the members every JSON line has; a field by that name is
// written with a trailing '_' so that it cannot shadow them.
bool IsReservedKey(absl::string_view key) {
  return key == "time" || key == "level" || key == "component" ||
         key == "source" || key == "message";
}

}  // namespace

LogField::LogField(absl::string_view key, double value)
    : key(key), kind(Kind::kNumber) {
  // JSON has no NaN or infinity: those go as strings.
  if (std::isfinite(value)) {
    this->value = absl::StrFormat("%.6g", value);
  } else {
    this->value = absl::StrFormat("%f", value);
    kind = Kind::kString;
  }
}

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

void SetLogFormat(LogFormat format) {
  g_format.store(static_cast<int>(format));
}

bool ParseLogFormat(absl::string_view name, bool stderr_is_terminal,
                    LogFormat* format) {
  if (name == "text")
    *format = LogFormat::kText;
  else if (name == "json")
    *format = LogFormat::kJson;
  else if (name == "auto")
    *format = stderr_is_terminal ? LogFormat::kText : LogFormat::kJson;
  else
    return false;
  return true;
}

void SetLogComponent(absl::string_view component) {
  std::lock_guard<std::mutex> lock(g_component_mu);
  *g_component = std::string(component);
}

std::string FormatLogLine(LogFormat format, absl::string_view time_text,
                          LogLevel level, absl::string_view component,
                          absl::string_view source, absl::string_view message,
                          const std::vector<LogField>& fields) {
  std::string out;
  out.reserve(96 + message.size());
  if (format == LogFormat::kText) {
    absl::StrAppend(&out, time_text, " ", LevelName(level), " ", component, " ",
                    source, "] ", message);
    for (const LogField& field : fields) {
      absl::StrAppend(&out, " ", field.key, "=");
      AppendTextValue(field.value, &out);
    }
    out.push_back('\n');
    return out;
  }
  out.append("{\"time\":");
  AppendJsonText(time_text, &out);
  absl::StrAppend(&out, ",\"level\":\"", JsonLevelName(level),
                  "\",\"component\":");
  AppendJsonText(component, &out);
  out.append(",\"source\":");
  AppendJsonText(source, &out);
  out.append(",\"message\":");
  AppendJsonText(message, &out);
  for (const LogField& field : fields) {
    out.push_back(',');
    AppendJsonText(IsReservedKey(field.key) ? absl::StrCat(field.key, "_")
                                            : std::string(field.key),
                   &out);
    out.push_back(':');
    if (field.kind == LogField::Kind::kString) {
      AppendJsonText(field.value, &out);
    } else {
      out.append(field.value);
    }
  }
  out.append("}\n");
  return out;
}

void WriteLogLine(LogLevel level, const char* file, int line,
                  absl::string_view message,
                  const std::vector<LogField>& fields) {
  const char* base = std::strrchr(file, '/');
  base = base ? base + 1 : file;
  std::string component;
  {
    std::lock_guard<std::mutex> lock(g_component_mu);
    component = *g_component;
  }
  std::string text = FormatLogLine(
      static_cast<LogFormat>(g_format.load()),
      absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(),
                       absl::UTCTimeZone()),
      level, component, absl::StrCat(base, ":", line), message, fields);
  // One write per line: lines of concurrent threads do not interleave.
  ssize_t unused = ::write(STDERR_FILENO, text.data(), text.size());
  (void)unused;
}

}  // namespace fetchfleet
