#include "common/result_json.h"

#include <cmath>
#include <cstdio>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace fetchfleet {

const char* ErrorKindName(v1::ErrorKind kind) {
  switch (kind) {
    case v1::ERROR_NONE:
      return "";
    case v1::ERROR_HTTP_STATUS:
      return "http_status";
    case v1::ERROR_TIMEOUT:
      return "timeout";
    case v1::ERROR_CONNECT:
      return "connect";
    case v1::ERROR_DNS:
      return "dns";
    case v1::ERROR_TLS:
      return "tls";
    case v1::ERROR_CIRCUIT_OPEN:
      return "circuit_open";
    case v1::ERROR_RATE_LIMITED:
      return "rate_limited";
    case v1::ERROR_BLOCKED:
      return "blocked";
    case v1::ERROR_TOO_LARGE:
      return "too_large";
    case v1::ERROR_INVALID_REQUEST:
      return "invalid_request";
    case v1::ERROR_CANCELLED:
      return "cancelled";
    case v1::ERROR_PROTOCOL:
      return "protocol";
    default:
      return "unknown";
  }
}

bool IsValidUtf8(absl::string_view text) {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const auto* end = p + text.size();
  while (p < end) {
    unsigned char c = *p;
    if (c < 0x80) {
      ++p;
      continue;
    }
    int extra;
    uint32_t min;
    uint32_t code;
    if ((c & 0xe0) == 0xc0) {
      extra = 1, min = 0x80, code = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      extra = 2, min = 0x800, code = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      extra = 3, min = 0x10000, code = c & 0x07;
    } else {
      return false;
    }
    if (end - p <= extra) return false;
    for (int i = 1; i <= extra; ++i) {
      if ((p[i] & 0xc0) != 0x80) return false;
      code = (code << 6) | (p[i] & 0x3f);
    }
    if (code < min || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff))
      return false;
    p += extra + 1;
  }
  return true;
}

void AppendJsonString(absl::string_view text, std::string* out) {
  out->push_back('"');
  size_t run_start = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    unsigned char c = text[i];
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out->append(text.data() + run_start, i - run_start);
    run_start = i + 1;
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
      default: {
        char buf[8];
        std::snprintf(buf, sizeof(buf), "\\u%04x", c);
        out->append(buf);
      }
    }
  }
  out->append(text.data() + run_start, text.size() - run_start);
  out->push_back('"');
}

void AppendJsonStringLossy(absl::string_view text, std::string* out) {
  if (IsValidUtf8(text)) {
    AppendJsonString(text, out);
    return;
  }
  std::string ascii(text);
  for (char& c : ascii) {
    if (static_cast<unsigned char>(c) >= 0x80) c = '?';
  }
  AppendJsonString(ascii, out);
}

void AppendResultJson(const v1::FetchResult& result, std::string* out) {
  // The latency is a worker's measurement, so any double can arrive: one that
  // is not a finite number (which "%.1f" writes as nan or inf, not JSON) goes
  // out as 0, and a huge one in full, never cut at a buffer's size.
  double latency_ms =
      std::isfinite(result.latency_ms()) ? result.latency_ms() : 0.0;
  std::string latency = absl::StrFormat("%.1f", latency_ms);
  absl::StrAppend(out, "{\"seq\": ", result.seq(), ", \"id\": ");
  AppendJsonStringLossy(result.id(), out);
  out->append(", \"url\": ");
  AppendJsonStringLossy(result.url(), out);
  absl::StrAppend(out, ", \"status\": ", result.status(),
                  ", \"ok\": ", result.ok() ? "true" : "false");
  if (!result.ok()) {
    out->append(", \"error\": ");
    AppendJsonString(ErrorKindName(result.error()), out);
    out->append(", \"error_message\": ");
    AppendJsonString(
        IsValidUtf8(result.error_message()) ? result.error_message() : "?",
        out);
  }
  absl::StrAppend(out, ", \"attempts\": ", result.attempts(),
                  ", \"latency_ms\": ", latency,
                  ", \"body_bytes\": ", result.body_bytes());
  if (!result.body().empty()) {
    if (IsValidUtf8(result.body())) {
      out->append(", \"body\": ");
      AppendJsonString(result.body(), out);
    } else {
      absl::StrAppend(out, ", \"body_base64\": \"",
                      absl::Base64Escape(result.body()), "\"");
    }
  }
  if (result.truncated()) out->append(", \"truncated\": true");
  if (result.headers_size() > 0) {
    out->append(", \"headers\": {");
    bool first = true;
    for (const v1::Header& header : result.headers()) {
      if (!first) out->append(", ");
      first = false;
      AppendJsonStringLossy(header.name(), out);
      out->append(": ");
      AppendJsonStringLossy(header.value(), out);
    }
    out->append("}");
  }
  if (!result.worker().empty()) {
    out->append(", \"worker\": ");
    AppendJsonStringLossy(result.worker(), out);
  }
  out->append("}");
}

}  // namespace fetchfleet
