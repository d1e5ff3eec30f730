// Tracing set-up shared by the coordinator and the worker: the --otlp-endpoint,
// --trace-sample-ratio and --trace-queue flags and the exporter they start.
// Without --otlp-endpoint nothing is recorded or exported (trace context is
// still propagated). Thread-safe (pure).
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/flags.h"
#include "common/otlp_exporter.h"

namespace fetchfleet {

struct TracingOptions {
  std::string otlp_endpoint;  // host:port of an OTLP/gRPC receiver (plaintext)
  double sample_ratio = 1.0;  // for new traces; a parent's flag is honoured
  int64_t queue_spans = 8192;
};

void AddTracingFlags(FlagSet* flags, TracingOptions* options);

// StartExporter checks the options and starts the exporter; null without
// --otlp-endpoint.
absl::StatusOr<std::unique_ptr<OtlpExporter>> StartExporter(
    const TracingOptions& options, std::string service_name,
    std::string instance_id);

}  // namespace fetchfleet
