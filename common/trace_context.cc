#include "common/trace_context.h"

#include "absl/random/random.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace fetchfleet {
namespace {

constexpr char kHex[] = "0123456789abcdef";

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;  // upper case is invalid too (the spec's HEXDIGLC)
}

// ParseHex reads `digits` lower-case hex digits into *out (at most 16).
bool ParseHex(absl::string_view text, uint64_t* out) {
  uint64_t v = 0;
  for (char c : text) {
    int d = HexValue(c);
    if (d < 0) return false;
    v = (v << 4) | static_cast<uint64_t>(d);
  }
  *out = v;
  return true;
}

void AppendHex(uint64_t v, int digits, std::string* out) {
  for (int i = digits - 1; i >= 0; --i)
    out->push_back(kHex[(v >> (4 * i)) & 0xf]);
}

void AppendBigEndian(uint64_t v, std::string* out) {
  for (int i = 7; i >= 0; --i) out->push_back(static_cast<char>(v >> (8 * i)));
}

absl::InsecureBitGen& Gen() {
  thread_local absl::InsecureBitGen gen;
  return gen;
}

absl::Status Bad(absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("traceparent ", why));
}

}  // namespace

std::string TraceContext::TraceIdBytes() const {
  std::string out;
  out.reserve(16);
  AppendBigEndian(trace_hi, &out);
  AppendBigEndian(trace_lo, &out);
  return out;
}

std::string TraceContext::TraceIdHex() const {
  std::string out;
  out.reserve(32);
  AppendHex(trace_hi, 16, &out);
  AppendHex(trace_lo, 16, &out);
  return out;
}

std::string SpanIdBytes(uint64_t span_id) {
  std::string out;
  if (span_id == 0) return out;
  out.reserve(8);
  AppendBigEndian(span_id, &out);
  return out;
}

std::string HexId(uint64_t id) {
  std::string out;
  out.reserve(16);
  AppendHex(id, 16, &out);
  return out;
}

absl::StatusOr<TraceContext> ParseTraceparent(absl::string_view traceparent,
                                              absl::string_view tracestate) {
  // version "-" trace-id "-" parent-id "-" flags: 2+1+32+1+16+1+2 = 55.
  absl::string_view v = traceparent;
  if (v.size() < kTraceparentBytes)
    return Bad("is too short (want 00-<32 hex>-<16 hex>-<2 hex>)");
  uint64_t version = 0;
  if (!ParseHex(v.substr(0, 2), &version))
    return Bad("version is not two lower-case hex digits");
  if (version == 0xff) return Bad("version ff is invalid");
  if (version == 0 && v.size() != kTraceparentBytes)
    return Bad("of version 00 must be exactly 55 characters");
  // A later version may append fields, after a '-'.
  if (v.size() > kTraceparentBytes && v[kTraceparentBytes] != '-')
    return Bad("has trailing characters");
  if (v[2] != '-' || v[35] != '-' || v[52] != '-')
    return Bad("fields must be separated by '-'");
  TraceContext context;
  uint64_t flags = 0;
  if (!ParseHex(v.substr(3, 16), &context.trace_hi) ||
      !ParseHex(v.substr(19, 16), &context.trace_lo))
    return Bad("trace-id is not 32 lower-case hex digits");
  if (!ParseHex(v.substr(36, 16), &context.span_id))
    return Bad("parent-id is not 16 lower-case hex digits");
  if (!ParseHex(v.substr(53, 2), &flags))
    return Bad("trace-flags are not two lower-case hex digits");
  if ((context.trace_hi | context.trace_lo) == 0)
    return Bad("trace-id is all zeros");
  if (context.span_id == 0) return Bad("parent-id is all zeros");
  context.sampled = (flags & 0x01) != 0;
  if (!tracestate.empty()) {
    if (absl::Status ok = ValidateTracestate(tracestate); !ok.ok()) return ok;
    context.tracestate = std::string(tracestate);
  }
  return context;
}

absl::Status ValidateTracestate(absl::string_view tracestate) {
  if (tracestate.size() > kMaxTracestateBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("tracestate is ", tracestate.size(),
                     " characters; the limit is ", kMaxTracestateBytes));
  }
  size_t members = 0;
  for (absl::string_view member : absl::StrSplit(tracestate, ',')) {
    for (char c : member) {
      if (c < 0x20 || c > 0x7e) {
        return absl::InvalidArgumentError(
            "tracestate has a character that is not printable ASCII");
      }
    }
    absl::string_view m = absl::StripAsciiWhitespace(member);
    if (m.empty()) continue;  // empty members are allowed and ignored
    size_t eq = m.find('=');
    if (eq == 0 || eq == absl::string_view::npos || eq + 1 == m.size()) {
      return absl::InvalidArgumentError("tracestate members must be key=value");
    }
    if (++members > kMaxTracestateMembers) {
      return absl::InvalidArgumentError(absl::StrCat(
          "tracestate has more than ", kMaxTracestateMembers, " members"));
    }
  }
  return absl::OkStatus();
}

std::string FormatTraceparent(const TraceContext& context) {
  std::string out;
  out.reserve(kTraceparentBytes);
  out.append("00-");
  AppendHex(context.trace_hi, 16, &out);
  AppendHex(context.trace_lo, 16, &out);
  out.push_back('-');
  AppendHex(context.span_id, 16, &out);
  out.append(context.sampled ? "-01" : "-00");
  return out;
}

uint64_t NewSpanId() {
  uint64_t id;
  do {
    id = absl::Uniform<uint64_t>(Gen());
  } while (id == 0);
  return id;
}

TraceContext NewRootContext(bool sampled) {
  TraceContext context;
  do {
    context.trace_hi = absl::Uniform<uint64_t>(Gen());
    context.trace_lo = absl::Uniform<uint64_t>(Gen());
  } while ((context.trace_hi | context.trace_lo) == 0);
  context.span_id = NewSpanId();
  context.sampled = sampled;
  return context;
}

TraceContext ChildContext(const TraceContext& parent) {
  TraceContext child = parent;
  child.span_id = NewSpanId();
  return child;
}

bool SampleRatio(double ratio) {
  if (ratio >= 1) return true;
  if (ratio <= 0) return false;
  return absl::Uniform<double>(Gen(), 0, 1) < ratio;
}

}  // namespace fetchfleet
