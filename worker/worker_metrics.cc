#include "worker/worker_metrics.h"

namespace fetchfleet::worker {
namespace {

using prometheus::BuildCounter;
using prometheus::BuildGauge;
using prometheus::BuildHistogram;

}  // namespace

WorkerMetrics::WorkerMetrics()
    : registry_(std::make_shared<prometheus::Registry>()),
      requests_(&BuildCounter()
                     .Name("fetchfleet_worker_requests_total")
                     .Help("Requests finished (their one result), by outcome "
                           "and the last attempt's HTTP status class.")
                     .Register(*registry_)),
      attempts_(&BuildCounter()
                     .Name("fetchfleet_worker_attempts_total")
                     .Help("HTTP attempts finished, retries included, by "
                           "outcome and HTTP status class.")
                     .Register(*registry_)),
      attempt_duration_(BuildHistogram()
                            .Name("fetchfleet_worker_attempt_duration_seconds")
                            .Help("Time of each HTTP attempt, from its start "
                                  "(waiting for a connection included) to "
                                  "its end.")
                            .Register(*registry_)
                            .Add({}, LatencyBuckets())),
      first_byte_(BuildHistogram()
                      .Name("fetchfleet_worker_time_to_first_byte_seconds")
                      .Help("Time from an attempt's start to the first byte "
                            "of its response (attempts that got one).")
                      .Register(*registry_)
                      .Add({}, LatencyBuckets())),
      rate_wait_(BuildHistogram()
                     .Name("fetchfleet_worker_rate_limit_wait_seconds")
                     .Help("Time each attempt waited for its rate-limit slot.")
                     .Register(*registry_)
                     .Add({}, LatencyBuckets())),
      retries_(BuildCounter()
                   .Name("fetchfleet_worker_retries_total")
                   .Help("Attempts followed by a retry.")
                   .Register(*registry_)
                   .Add({})),
      retries_denied_(BuildCounter()
                          .Name("fetchfleet_worker_retries_denied_total")
                          .Help("Retries a key's retry budget did not allow.")
                          .Register(*registry_)
                          .Add({})),
      breaker_refusals_(
          BuildCounter()
              .Name("fetchfleet_worker_breaker_refusals_total")
              .Help("Requests an open circuit breaker failed as circuit_open.")
              .Register(*registry_)
              .Add({})),
      egress_refusals_(
          BuildCounter()
              .Name("fetchfleet_worker_egress_refusals_total")
              .Help("Attempts the egress policy refused (result: blocked).")
              .Register(*registry_)
              .Add({})),
      received_bytes_(BuildCounter()
                          .Name("fetchfleet_worker_received_bytes_total")
                          .Help("Response body bytes received, all attempts.")
                          .Register(*registry_)
                          .Add({})),
      in_flight_(BuildGauge()
                     .Name("fetchfleet_worker_requests_in_flight")
                     .Help("Requests this worker holds (waiting or fetching).")
                     .Register(*registry_)
                     .Add({})),
      connected_gauge_(BuildGauge()
                           .Name("fetchfleet_worker_connected")
                           .Help("1 while connected to a coordinator.")
                           .Register(*registry_)
                           .Add({})),
      draining_gauge_(BuildGauge()
                          .Name("fetchfleet_worker_draining")
                          .Help("1 once draining (it takes no more work).")
                          .Register(*registry_)
                          .Add({})),
      redis_(*registry_) {}

void WorkerMetrics::OnAttemptDone(const AttemptReport& report) {
  const AttemptResult& result = report.result;
  attempts_.Get(result.outcome.error, result.outcome.http_status).Increment();
  attempt_duration_.Observe(absl::ToDoubleSeconds(result.timings.total));
  if (result.timings.first_byte > absl::ZeroDuration())
    first_byte_.Observe(absl::ToDoubleSeconds(result.timings.first_byte));
  rate_wait_.Observe(absl::ToDoubleSeconds(report.rate_wait));
  if (report.will_retry) retries_.Increment();
  if (result.outcome.error == v1::ERROR_BLOCKED) egress_refusals_.Increment();
  if (result.body_bytes > 0)
    received_bytes_.Increment(static_cast<double>(result.body_bytes));
}

void WorkerMetrics::OnBreakerRefused(const v1::FetchRequest& /*request*/) {
  breaker_refusals_.Increment();
}

void WorkerMetrics::OnRetryDenied(const v1::FetchRequest& /*request*/) {
  retries_denied_.Increment();
}

void WorkerMetrics::OnRequestDone(const v1::FetchRequest& /*request*/,
                                  const v1::FetchResult& result) {
  requests_.Get(result.error(), result.status()).Increment();
}

void WorkerMetrics::SetConnected(bool connected) {
  connected_ = connected;
  connected_gauge_.Set(connected ? 1 : 0);
}

void WorkerMetrics::SetDraining(bool draining) {
  draining_ = draining;
  draining_gauge_.Set(draining ? 1 : 0);
}

void WorkerMetrics::SetInFlight(int64_t requests) {
  in_flight_.Set(static_cast<double>(requests));
}

Readiness WorkerMetrics::Ready() const {
  if (draining_) return {false, "draining"};
  if (!connected_) return {false, "not connected to a coordinator"};
  return {true, ""};
}

}  // namespace fetchfleet::worker
