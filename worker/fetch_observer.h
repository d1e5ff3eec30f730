// FetchObserver: what the worker's request loop tells the telemetry about
// each request, for metrics and traces alike. RequestRunner calls it on its
// shard's loop thread, once per event, after the event has happened; an
// observer must be quick and must not block (it runs on the hot path), and
// one observer serves every shard, so it must be thread-safe.
//
//   RequestRunner --OnAttemptDone--> observer (each attempt, retries included)
//                 --OnBreakerRefused-> observer (the breaker said no)
//                 --OnRequestDone---> observer (the one result, once)
#pragma once

#include <cstdint>
#include <vector>

#include "absl/time/time.h"
#include "common/trace_context.h"
#include "proto/fetchfleet.pb.h"
#include "worker/curl_fetcher.h"

namespace fetchfleet::worker {

// AttemptReport describes one finished HTTP attempt.
struct AttemptReport {
  const v1::FetchRequest& request;
  uint32_t attempt = 1;  // 1-based
  const AttemptResult& result;
  // Waited for this attempt's rate-limit slot.
  absl::Duration rate_wait;
  // The breaker let this attempt through as its half-open probe (else it
  // was closed).
  bool probe = false;
  // Another attempt follows (after a backoff).
  bool will_retry = false;
  // The request's trace context (its parent span) and this attempt's span
  // id, as sent upstream in traceparent; null and 0 when not traced.
  const TraceContext* trace = nullptr;
  uint64_t span_id = 0;
};

class FetchObserver {
 public:
  virtual ~FetchObserver() = default;
  virtual void OnAttemptDone(const AttemptReport& /*report*/) {}
  // The breaker of `request`'s key refused it (it fails as circuit_open).
  virtual void OnBreakerRefused(const v1::FetchRequest& /*request*/) {}
  // A retry was due but the key's retry budget was spent.
  virtual void OnRetryDenied(const v1::FetchRequest& /*request*/) {}
  // The request's one result, just before it goes to the coordinator.
  virtual void OnRequestDone(const v1::FetchRequest& /*request*/,
                             const v1::FetchResult& /*result*/) {}
};

// FetchObservers fans each event out to several observers (metrics, traces).
class FetchObservers final : public FetchObserver {
 public:
  void Add(FetchObserver* observer) { observers_.push_back(observer); }
  bool empty() const { return observers_.empty(); }

  void OnAttemptDone(const AttemptReport& report) override {
    for (FetchObserver* o : observers_) o->OnAttemptDone(report);
  }
  void OnBreakerRefused(const v1::FetchRequest& request) override {
    for (FetchObserver* o : observers_) o->OnBreakerRefused(request);
  }
  void OnRetryDenied(const v1::FetchRequest& request) override {
    for (FetchObserver* o : observers_) o->OnRetryDenied(request);
  }
  void OnRequestDone(const v1::FetchRequest& request,
                     const v1::FetchResult& result) override {
    for (FetchObserver* o : observers_) o->OnRequestDone(request, result);
  }

 private:
  std::vector<FetchObserver*> observers_;
};

}  // namespace fetchfleet::worker
