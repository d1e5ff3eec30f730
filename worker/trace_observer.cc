#include "worker/trace_observer.h"

#include <utility>

#include "common/redact.h"
#include "common/result_json.h"

namespace fetchfleet::worker {
namespace {

double Ms(absl::Duration d) { return absl::ToDoubleMilliseconds(d); }

void SetRequestAttributes(otlp::trace::v1::Span* span,
                          const v1::FetchRequest& request,
                          const std::string& worker) {
  SetAttribute(span, "http.request.method", request.method());
  SetAttribute(span, "url.full", RedactUrl(request.url()));
  SetAttribute(span, "fetchfleet.request.id", request.id());
  SetAttribute(span, "fetchfleet.request.index",
               static_cast<int64_t>(request.index()));
  SetAttribute(span, "fetchfleet.rate_key", request.rate_key());
  SetAttribute(span, "fetchfleet.worker", worker);
}

}  // namespace

TraceObserver::TraceObserver(OtlpExporter* exporter, std::string worker_name)
    : exporter_(exporter), worker_name_(std::move(worker_name)) {}

void TraceObserver::OnAttemptDone(const AttemptReport& report) {
  if (report.trace == nullptr || !report.trace->sampled) return;
  const AttemptResult& result = report.result;
  const AttemptTimings& timings = result.timings;
  absl::Duration total = timings.total > absl::ZeroDuration()
                             ? timings.total
                             : absl::Milliseconds(result.latency_ms);
  TraceContext context = *report.trace;
  context.span_id = report.span_id;
  otlp::trace::v1::Span span =
      NewSpan("fetch attempt", context, report.trace->span_id, result.started,
              result.started + total);
  span.set_kind(otlp::trace::v1::Span::SPAN_KIND_CLIENT);
  SetRequestAttributes(&span, report.request, worker_name_);
  SetAttribute(&span, "fetchfleet.attempt",
               static_cast<int64_t>(report.attempt));
  if (result.outcome.http_status > 0) {
    SetAttribute(&span, "http.response.status_code",
                 static_cast<int64_t>(result.outcome.http_status));
  }
  SetAttribute(&span, "fetchfleet.dns_ms", Ms(timings.dns));
  SetAttribute(&span, "fetchfleet.connect_ms", Ms(timings.connect));
  SetAttribute(&span, "fetchfleet.tls_ms", Ms(timings.tls));
  SetAttribute(&span, "fetchfleet.first_byte_ms", Ms(timings.first_byte));
  SetAttribute(&span, "fetchfleet.total_ms", Ms(total));
  SetAttribute(&span, "fetchfleet.rate_wait_ms", Ms(report.rate_wait));
  SetAttribute(&span, "fetchfleet.breaker", report.probe ? "probe" : "closed");
  SetAttribute(&span, "fetchfleet.will_retry", report.will_retry);
  SetAttribute(&span, "http.response.body.size",
               static_cast<int64_t>(result.body_bytes));
  if (result.outcome.error != v1::ERROR_NONE) {
    SetAttribute(&span, "error.type", ErrorKindName(result.outcome.error));
    SetError(&span, result.error_message);
  }
  exporter_->Export(std::move(span));
}

void TraceObserver::OnBreakerRefused(const v1::FetchRequest& request) {
  if (request.traceparent().empty()) return;
  absl::StatusOr<TraceContext> parent =
      ParseTraceparent(request.traceparent(), request.tracestate());
  if (!parent.ok() || !parent->sampled) return;
  TraceContext context = ChildContext(*parent);
  absl::Time now = absl::Now();
  otlp::trace::v1::Span span =
      NewSpan("fetch refused", context, parent->span_id, now, now);
  span.set_kind(otlp::trace::v1::Span::SPAN_KIND_CLIENT);
  SetRequestAttributes(&span, request, worker_name_);
  SetAttribute(&span, "fetchfleet.breaker", "open");
  SetAttribute(&span, "error.type", ErrorKindName(v1::ERROR_CIRCUIT_OPEN));
  SetError(&span, "the circuit breaker refused the request");
  exporter_->Export(std::move(span));
}

}  // namespace fetchfleet::worker
