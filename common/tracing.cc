#include "common/tracing.h"

#include "absl/strings/str_cat.h"

namespace fetchfleet {

void AddTracingFlags(FlagSet* flags, TracingOptions* options) {
  flags->String("otlp-endpoint", &options->otlp_endpoint,
                "export trace spans to this OTLP/gRPC receiver, host:port "
                "(plaintext); unset: no spans are recorded (W3C trace context "
                "is still propagated)");
  flags->Double("trace-sample-ratio", &options->sample_ratio,
                "fraction of new traces recorded, 0 to 1 (a traceparent's "
                "sampled flag is honoured whatever this is)");
  flags->Int("trace-queue", &options->queue_spans,
             "finished spans held for export; when full, new spans are "
             "dropped and counted");
}

absl::StatusOr<std::unique_ptr<OtlpExporter>> StartExporter(
    const TracingOptions& options, std::string service_name,
    std::string instance_id) {
  if (!(options.sample_ratio >= 0 && options.sample_ratio <= 1)) {
    return absl::InvalidArgumentError(
        "--trace-sample-ratio must be from 0 to 1");
  }
  if (options.queue_spans < 1 || options.queue_spans > (1 << 22)) {
    return absl::InvalidArgumentError(
        "--trace-queue must be from 1 to 4194304");
  }
  if (options.otlp_endpoint.empty()) return nullptr;
  if (options.otlp_endpoint.find(':') == std::string::npos ||
      options.otlp_endpoint.find("://") != std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--otlp-endpoint must be host:port, not ", options.otlp_endpoint));
  }
  OtlpExporter::Options exporter;
  exporter.service_name = std::move(service_name);
  exporter.service_instance_id = std::move(instance_id);
  exporter.queue_spans = static_cast<size_t>(options.queue_spans);
  return std::make_unique<OtlpExporter>(exporter,
                                        NewGrpcSpanSink(options.otlp_endpoint));
}

}  // namespace fetchfleet
