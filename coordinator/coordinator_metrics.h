// CoordinatorMetrics: the coordinator's Prometheus metrics (README "Metrics"
// lists them), in two parts:
//
//   events   RPCs by method and code (a gRPC server interceptor), Aggregate
//            latency and degraded parts: prometheus-cpp counters and
//            histograms, bumped where they happen, from any thread;
//   census   jobs, requests, workers, rate keys and breakers: read from the
//            Scheduler on its loop when /metrics is scraped (CallOnLoop), so
//            the scheduler's hot path keeps only plain counters and a scrape
//            sees one consistent moment.
//
// Cardinality: no label carries a URL or an id. Rate keys appear as labels
// only when a limit or breaker settings are configured for them, at most
// kMaxKeyLabels of them (the first in sorted order, so the set is stable);
// the rest are summed into key="other".
//
// Thread-safe.
#pragma once

#include <grpcpp/support/server_interceptor.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/event_loop.h"
#include "common/metrics_server.h"
#include "prometheus/collectable.h"
#include "prometheus/counter.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace fetchfleet::coordinator {

class Scheduler;

constexpr size_t kMaxKeyLabels = 1000;

class CoordinatorMetrics {
 public:
  // `scheduler` lives on `loop`; both must outlive the metrics server.
  CoordinatorMetrics(EventLoop* loop, const Scheduler* scheduler);

  // What /metrics serves.
  std::vector<std::shared_ptr<prometheus::Collectable>> collectables() const;

  // OnRpc counts a finished RPC. `method` is gRPC's "/pkg.Service/Method";
  // a method this binary does not know is counted as "other".
  void OnRpc(absl::string_view method, grpc::StatusCode code);
  // OnAggregate counts a finished Aggregate call.
  void OnAggregate(absl::Duration latency, bool ok, int degraded_parts);

  // An interceptor factory that reports every RPC's method and status here.
  std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
  RpcInterceptorFactory();

 private:
  class SchedulerCollector;

  std::shared_ptr<prometheus::Registry> registry_;
  std::shared_ptr<SchedulerCollector> census_;
  prometheus::Family<prometheus::Counter>& rpcs_;
  prometheus::Histogram& aggregate_ok_;
  prometheus::Histogram& aggregate_failed_;
  prometheus::Counter& degraded_parts_;
};

}  // namespace fetchfleet::coordinator
