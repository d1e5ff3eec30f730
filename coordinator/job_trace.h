// JobTrace: the trace context of a job (or an Aggregate call) on the
// coordinator, and its span. A job that came with a traceparent gets a span
// that is that traceparent's child and honours its sampled flag; a job
// without one, on a coordinator with --otlp-endpoint, gets a new trace whose
// requests are each sampled with --trace-sample-ratio; otherwise the job is
// not traced and its requests carry no context. Every request without a
// traceparent of its own is stamped with the job's context (its span as the
// parent), which the worker carries on to the upstream.
//
// Loop thread only (owned by its job or call).
#pragma once

#include <cstdint>
#include <string>

#include "absl/time/time.h"
#include "common/otlp_exporter.h"
#include "common/trace_context.h"
#include "proto/fetchfleet.pb.h"

namespace fetchfleet::coordinator {

// TraceSettings: the coordinator's tracing (--otlp-endpoint,
// --trace-sample-ratio).
struct TraceSettings {
  OtlpExporter* exporter = nullptr;  // null: nothing is recorded
  double sample_ratio = 1.0;         // for requests of new traces
};

class JobTrace {
 public:
  JobTrace() = default;
  // Start decides the trace of a job given its client's `traceparent` and
  // `tracestate` (validated, or empty).
  // `per_request`: a new trace samples each request (a batch job); else the
  // whole trace is sampled once (an Aggregate call).
  static JobTrace Start(const TraceSettings& settings,
                        const std::string& traceparent,
                        const std::string& tracestate, absl::Time now,
                        bool per_request = true);

  // active: the job has a trace context (its requests carry it).
  bool active() const { return active_; }
  // recording: the job's span is recorded and will be exported.
  bool recording() const { return active_ && exporter_ != nullptr && sampled_; }
  const TraceContext& context() const { return context_; }
  // trace_id: the trace's 32 hex digits for log lines; empty without one.
  std::string trace_id() const {
    return active_ ? context_.TraceIdHex() : std::string();
  }
  uint64_t parent_span_id() const { return parent_span_id_; }
  absl::Time started() const { return started_; }

  // Stamp gives `request` the job's context unless it has its own.
  void Stamp(v1::FetchRequest* request) const;
  // NewSpan: the job's span named `name`, ending at `end`, for attributes to
  // be added and then Export.
  otlp::trace::v1::Span NewJobSpan(absl::string_view name,
                                   absl::Time end) const;
  void Export(otlp::trace::v1::Span span) const;

 private:
  bool active_ = false;
  bool sampled_ = false;
  // A new trace: each request is sampled with sample_ratio_ (else every
  // request takes the client's flag).
  bool per_request_ = false;
  double sample_ratio_ = 0;
  OtlpExporter* exporter_ = nullptr;
  TraceContext context_;  // the job's span
  uint64_t parent_span_id_ = 0;
  absl::Time started_;
  std::string sampled_header_;    // traceparent for a sampled request
  std::string unsampled_header_;  // and for one that is not
};

}  // namespace fetchfleet::coordinator
