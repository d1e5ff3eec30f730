#include "common/trace_metrics.h"

#include "prometheus/metric_family.h"

namespace fetchfleet {
namespace {

class ExporterCollector final : public prometheus::Collectable {
 public:
  explicit ExporterCollector(const OtlpExporter* exporter)
      : exporter_(exporter) {}

  std::vector<prometheus::MetricFamily> Collect() const override {
    std::vector<prometheus::MetricFamily> out;
    auto counter = [&out](const char* name, const char* help, double value) {
      prometheus::MetricFamily family;
      family.name = name;
      family.help = help;
      family.type = prometheus::MetricType::Counter;
      prometheus::ClientMetric metric;
      metric.counter.value = value;
      family.metric.push_back(std::move(metric));
      out.push_back(std::move(family));
    };
    counter("fetchfleet_trace_spans_exported_total",
            "Spans the OTLP endpoint accepted.",
            static_cast<double>(exporter_->spans_exported()));
    counter("fetchfleet_trace_spans_dropped_total",
            "Spans dropped because the export queue was full (or their batch "
            "failed).",
            static_cast<double>(exporter_->spans_dropped()));
    counter("fetchfleet_trace_export_errors_total",
            "Export calls the OTLP endpoint failed.",
            static_cast<double>(exporter_->export_errors()));
    return out;
  }

 private:
  const OtlpExporter* const exporter_;
};

}  // namespace

std::shared_ptr<prometheus::Collectable> TraceExporterMetrics(
    const OtlpExporter* exporter) {
  return std::make_shared<ExporterCollector>(exporter);
}

}  // namespace fetchfleet
