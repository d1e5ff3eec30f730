// RequestRunner: carries each assigned request through its attempts on the
// worker's loop:
//
//   assignment -> rate-limit slot -> attempt (CurlFetcher) -> done, or
//                                   transient failure -> backoff timer -> slot
//                                   -> attempt ...
//
// Retries follow common/retry_policy (full jitter, Retry-After honoured, only
// transient failures); every attempt, retries included, takes a rate-limit
// slot. The number of requests held is bounded by the credit the worker grants
// the coordinator.
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
#include "common/event_loop.h"
#include "common/rate_limiter.h"
#include "common/retry_policy.h"
#include "proto/fetchfleet.pb.h"
#include "worker/curl_fetcher.h"

namespace fetchfleet::worker {

class RequestRunner {
 public:
  using Complete =
      absl::AnyInvocable<void(uint64_t lease_id, v1::FetchResult result)>;

  RequestRunner(EventLoop* loop, CurlFetcher* fetcher, RateLimiter* limiter,
                BackoffConfig backoff, std::string worker_name,
                Complete on_complete);
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

 private:
  struct Task {
    uint64_t lease_id = 0;
    v1::FetchRequest request;
    AttemptSettings settings;
    uint32_t attempts = 0;
    uint64_t fetch = 0;            // in-flight attempt, 0 when none
    EventLoop::TimerId timer = 0;  // pending backoff or slot wait, 0 when none
    absl::Duration rate_wait;      // waited for rate-limit slots, all attempts
  };

  void WaitForSlot(Task* task);
  void StartAttempt(Task* task);
  void OnAttemptDone(uint64_t lease_id, AttemptResult result);
  void Stop(Task* task);

  EventLoop* const loop_;
  CurlFetcher* const fetcher_;
  RateLimiter* const limiter_;
  const BackoffConfig backoff_;
  const std::string worker_name_;
  Complete on_complete_;
  absl::BitGen gen_;
  absl::flat_hash_map<uint64_t, std::unique_ptr<Task>> tasks_;
  uint64_t completed_ = 0;
  uint64_t missed_slots_ = 0;
  bool in_reserve_ = false;  // inside limiter_->Reserve (see WaitForSlot)
  // Set in the destructor: limiter callbacks that arrive later must not touch
  // tasks_.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace fetchfleet::worker
