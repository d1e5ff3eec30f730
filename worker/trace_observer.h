// TraceObserver: the worker's spans. It turns each finished attempt of a
// sampled request into one OTLP span (child of the request's trace context,
// with the span id the upstream saw in traceparent) carrying libcurl's phase
// timings, the rate-limit wait and the breaker's decision, and a breaker
// refusal into a zero-length span; the OtlpExporter batches them off the
// loop. An unsampled or untraced request costs one pointer test per event.
//
// Thread-safe (every shard loop calls it; the exporter is thread-safe).
#pragma once

#include <string>

#include "common/otlp_exporter.h"
#include "worker/fetch_observer.h"

namespace fetchfleet::worker {

class TraceObserver final : public FetchObserver {
 public:
  // `exporter` must outlive the observer.
  TraceObserver(OtlpExporter* exporter, std::string worker_name);

  void OnAttemptDone(const AttemptReport& report) override;
  void OnBreakerRefused(const v1::FetchRequest& request) override;

 private:
  OtlpExporter* const exporter_;
  const std::string worker_name_;
};

}  // namespace fetchfleet::worker
