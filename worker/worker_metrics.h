// WorkerMetrics: a worker's Prometheus metrics (README "Metrics" lists them).
// Fed by the FetchObserver seam on the shard loops, by the Redis clients, and
// by the worker's main loop for its connection state; read by the metrics
// server's threads. No label carries a URL, an id or a rate key: a crawl's
// million hosts cost no series here (per-key views live on the coordinator).
//
// Thread-safe.
#pragma once

#include <atomic>
#include <memory>

#include "common/metrics_server.h"
#include "common/outcome_counters.h"
#include "common/redis_metrics.h"
#include "prometheus/counter.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"
#include "worker/fetch_observer.h"

namespace fetchfleet::worker {

class WorkerMetrics final : public FetchObserver {
 public:
  WorkerMetrics();

  std::shared_ptr<prometheus::Registry> registry() const { return registry_; }
  RedisStats* redis() { return &redis_; }

  // FetchObserver, on the shard loops.
  void OnAttemptDone(const AttemptReport& report) override;
  void OnBreakerRefused(const v1::FetchRequest& request) override;
  void OnRetryDenied(const v1::FetchRequest& request) override;
  void OnRequestDone(const v1::FetchRequest& request,
                     const v1::FetchResult& result) override;

  // The worker's state, from its main loop.
  void SetConnected(bool connected);
  void SetDraining(bool draining);
  void SetInFlight(int64_t requests);
  // Readiness for /readyz: connected to a coordinator and not draining.
  Readiness Ready() const;

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  OutcomeCounters requests_;
  OutcomeCounters attempts_;
  prometheus::Histogram& attempt_duration_;
  prometheus::Histogram& first_byte_;
  prometheus::Histogram& rate_wait_;
  prometheus::Counter& retries_;
  prometheus::Counter& retries_denied_;
  prometheus::Counter& breaker_refusals_;
  prometheus::Counter& egress_refusals_;
  prometheus::Counter& received_bytes_;
  prometheus::Gauge& in_flight_;
  prometheus::Gauge& connected_gauge_;
  prometheus::Gauge& draining_gauge_;
  RedisMetrics redis_;
  std::atomic<bool> connected_{false};
  std::atomic<bool> draining_{false};
};

}  // namespace fetchfleet::worker
