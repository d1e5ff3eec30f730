#include "coordinator/job_trace.h"

#include <utility>

namespace fetchfleet::coordinator {

JobTrace JobTrace::Start(const TraceSettings& settings,
                         const std::string& traceparent,
                         const std::string& tracestate, absl::Time now,
                         bool per_request) {
  JobTrace trace;
  trace.exporter_ = settings.exporter;
  trace.started_ = now;
  if (!traceparent.empty()) {
    absl::StatusOr<TraceContext> parent =
        ParseTraceparent(traceparent, tracestate);
    if (!parent.ok()) return trace;  // validated at submit; never here
    trace.context_ = ChildContext(*parent);
    trace.parent_span_id_ = parent->span_id;
    trace.sampled_ = parent->sampled;
  } else if (settings.exporter != nullptr && settings.sample_ratio > 0 &&
             (per_request || SampleRatio(settings.sample_ratio))) {
    trace.context_ = NewRootContext(/*sampled=*/true);
    trace.sampled_ = true;
    trace.per_request_ = per_request && settings.sample_ratio < 1;
    trace.sample_ratio_ = settings.sample_ratio;
  } else {
    return trace;
  }
  trace.active_ = true;
  TraceContext flagged = trace.context_;
  flagged.sampled = trace.sampled_;
  trace.sampled_header_ = FormatTraceparent(flagged);
  flagged.sampled = false;
  trace.unsampled_header_ = FormatTraceparent(flagged);
  return trace;
}

void JobTrace::Stamp(v1::FetchRequest* request) const {
  if (!active_ || !request->traceparent().empty()) return;
  bool sampled = per_request_ ? SampleRatio(sample_ratio_) : sampled_;
  request->set_traceparent(sampled ? sampled_header_ : unsampled_header_);
  if (!context_.tracestate.empty())
    request->set_tracestate(context_.tracestate);
}

otlp::trace::v1::Span JobTrace::NewJobSpan(absl::string_view name,
                                           absl::Time end) const {
  otlp::trace::v1::Span span =
      NewSpan(name, context_, parent_span_id_, started_, end);
  span.set_kind(otlp::trace::v1::Span::SPAN_KIND_SERVER);
  return span;
}

void JobTrace::Export(otlp::trace::v1::Span span) const {
  if (recording()) exporter_->Export(std::move(span));
}

}  // namespace fetchfleet::coordinator
