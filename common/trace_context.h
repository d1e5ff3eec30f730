// TraceContext: a W3C Trace Context (traceparent + tracestate), the one way a
// trace crosses fetchctl, the coordinator, the workers and the upstream. A
// context names a trace (16 bytes), the span that sent it (8 bytes) and
// whether that span was sampled; tracestate is carried as given.
//
// Parsing follows the W3C Trace Context recommendation: version 00 exactly,
// a later version by its first four fields; lower-case hex only; the
// all-zero trace and span ids and version ff are invalid. New ids come from a
// per-thread fast generator (not for secrets). Thread-safe (pure, except the
// per-thread generator).
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace fetchfleet {

// kMaxTracestateBytes: the size the spec asks every participant to carry; a
// longer tracestate is refused rather than cut mid-member.
inline constexpr size_t kMaxTracestateBytes = 512;
inline constexpr size_t kMaxTracestateMembers = 32;
inline constexpr size_t kTraceparentBytes = 55;

struct TraceContext {
  uint64_t trace_hi = 0;  // trace id, big-endian halves
  uint64_t trace_lo = 0;
  uint64_t span_id = 0;  // the sending span (traceparent's parent-id)
  bool sampled = false;
  std::string tracestate;

  bool valid() const { return (trace_hi | trace_lo) != 0 && span_id != 0; }
  // TraceIdBytes / SpanIdBytes: the ids as OTLP carries them (big-endian).
  std::string TraceIdBytes() const;
  // TraceIdHex: the 32 hex digits of the trace id.
  std::string TraceIdHex() const;
};

// ParseTraceparent reads a traceparent header value (and its tracestate, may
// be empty); the error says what is wrong.
absl::StatusOr<TraceContext> ParseTraceparent(absl::string_view traceparent,
                                              absl::string_view tracestate);

// ValidateTracestate checks a tracestate value: printable ASCII, at most
// kMaxTracestateBytes and kMaxTracestateMembers comma-separated key=value
// members.
absl::Status ValidateTracestate(absl::string_view tracestate);

// FormatTraceparent writes `context` as a version-00 traceparent.
std::string FormatTraceparent(const TraceContext& context);

// NewSpanId: a random nonzero span id.
uint64_t NewSpanId();
// NewRootContext: a new trace with a new span.
TraceContext NewRootContext(bool sampled);
// ChildContext: a new span of `parent`'s trace, with its flag and tracestate.
TraceContext ChildContext(const TraceContext& parent);
// SampleRatio: true with probability `ratio` (0 never, 1 always).
bool SampleRatio(double ratio);

// SpanIdBytes: a span id as OTLP carries it (8 bytes, big-endian); 0 is empty.
std::string SpanIdBytes(uint64_t span_id);
// HexId: `id` as 16 lower-case hex digits.
std::string HexId(uint64_t id);

}  // namespace fetchfleet
