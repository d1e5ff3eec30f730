// TraceExporterMetrics: an OTLP exporter's counts on /metrics:
//   fetchfleet_trace_spans_exported_total, fetchfleet_trace_spans_dropped_total
//   (the bounded queue was full), fetchfleet_trace_export_errors_total.
#pragma once

#include <memory>

#include "common/otlp_exporter.h"
#include "prometheus/collectable.h"

namespace fetchfleet {

// The exporter must outlive the metrics server.
std::shared_ptr<prometheus::Collectable> TraceExporterMetrics(
    const OtlpExporter* exporter);

}  // namespace fetchfleet
