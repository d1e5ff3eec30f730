// RequestRunner: carries each assigned request through its attempts on the
// worker's loop:
//
//   assignment -> breaker -> rate-limit slot -> attempt (CurlFetcher) -> done,
//                 |  or transient failure -> retry budget -> backoff timer
//                 |                          -> breaker -> slot -> attempt ...
//                 \-> open: `circuit_open` at once, or wait (breaker_wait_ms)
//
// The breaker comes first, so a request it refuses burns no attempt and no
// rate slot. Each attempt's outcome feeds the key's breaker (the probe's
// decides the half-open breaker). Retries follow common/retry_policy (full
// jitter, Retry-After honoured, only transient failures) within the key's
// retry budget; every attempt, retries included, takes a rate-limit slot. The
// number of requests held is bounded by the credit the worker grants the
// coordinator.
//
// Loop thread only.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/functional/any_invocable.h"
#include "absl/random/random.h"
#include "common/breaker.h"
#include "common/event_loop.h"
#include "common/rate_limiter.h"
#include "common/retry_policy.h"
#include "common/trace_context.h"
#include "proto/fetchfleet.pb.h"
#include "worker/circuit_breaker.h"
#include "worker/curl_fetcher.h"
#include "worker/fetch_observer.h"

namespace fetchfleet::worker {

// BoundAssignment fills in the defaults (0 = 1 MiB body cap, 3 attempts,
// 10 s timeout) and holds the coordinator's numbers to the limits the request
// parser enforces: the body cap to kMaxBodyCapBytes (2^64 would buffer
// whatever the upstream sends), attempts to 20 (a million would hammer it for
// hours), the timeout and the breaker wait to 10 minutes.
void BoundAssignment(v1::Assignment* assignment);

class RequestRunner {
 public:
  using Complete =
      absl::AnyInvocable<void(uint64_t lease_id, v1::FetchResult result)>;

  RequestRunner(EventLoop* loop, CurlFetcher* fetcher, RateLimiter* limiter,
                CircuitBreaker* breaker, BackoffConfig backoff,
                std::string worker_name, Complete on_complete,
                FetchObserver* observer = nullptr);
  ~RequestRunner();

  void Add(v1::Assignment assignment);
  // Cancel abandons a request silently (its lease is gone).
  void Cancel(uint64_t lease_id);
  void CancelAll();
  // ReleaseUnstarted removes and returns the requests whose first attempt has
  // not begun.
  std::vector<uint64_t> ReleaseUnstarted();

  size_t size() const { return tasks_.size(); }
  uint64_t completed() const { return completed_; }
  // Slots given up because the loop reached them too late.
  uint64_t missed_slots() const { return missed_slots_; }
  // Requests the breaker refused (failed at once or after waiting).
  uint64_t refused() const { return refused_; }
  // Retries the retry budget did not allow.
  uint64_t retries_denied() const { return retries_denied_; }

 private:
  struct Task {
    uint64_t lease_id = 0;
    v1::FetchRequest request;
    AttemptSettings settings;
    uint32_t attempts = 0;
    double last_latency_ms = 0;  // of the last attempt made (refusals keep it)
    uint64_t fetch = 0;          // in-flight attempt, 0 when none
    EventLoop::TimerId timer = 0;  // pending backoff or slot wait, 0 when none
    absl::Duration rate_wait;      // waited for rate-limit slots, all attempts
    absl::Duration attempt_rate_wait;  // of them, for the current attempt
    uint64_t probe_token = 0;          // this attempt is its breaker's probe
    // How long it may wait at an open breaker.
    absl::Time breaker_deadline = absl::InfinitePast();
    // The request's trace context (the parent of its attempts' spans); only
    // when trace_context is set.
    bool traced = false;
    TraceContext trace;
    uint64_t attempt_span_id = 0;  // the current attempt's span
  };

  void CheckBreaker(Task* task);
  void OnRefused(Task* task, absl::Time retry_at);
  void WaitForSlot(Task* task);
  void StartAttempt(Task* task);
  void OnAttemptDone(uint64_t lease_id, AttemptResult result);
  // Finish ends a task with `attempt` as its result.
  void Finish(Task* task, AttemptResult attempt);
  RetryBudget& BudgetFor(const std::string& key);
  void Stop(Task* task);

  EventLoop* const loop_;
  CurlFetcher* const fetcher_;
  RateLimiter* const limiter_;
  CircuitBreaker* const breaker_;
  const BackoffConfig backoff_;
  const std::string worker_name_;
  Complete on_complete_;
  FetchObserver* const observer_;  // never null (a no-op one by default)
  absl::BitGen gen_;
  absl::flat_hash_map<uint64_t, std::unique_ptr<Task>> tasks_;
  uint64_t completed_ = 0;
  uint64_t missed_slots_ = 0;
  uint64_t refused_ = 0;
  uint64_t retries_denied_ = 0;
  absl::flat_hash_map<std::string, RetryBudget> budgets_;
  bool in_reserve_ = false;  // inside limiter_->Reserve (see WaitForSlot)
  // Set in the destructor: limiter callbacks that arrive later must not touch
  // tasks_.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace fetchfleet::worker
