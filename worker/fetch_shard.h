// FetchShard: one fetch thread of a worker: its own event loop, libcurl multi
// handle (CurlFetcher) and RequestRunner. A worker runs one shard per core;
// connections are reused within a shard. The worker hands requests in with Post
// and hears back through the completion callback, which runs on the shard's
// thread.
//
// Thread-safe: Start/Stop from the owner; everything else through loop()->Post.
#pragma once

#include <memory>
#include <string>
#include <thread>

#include "common/egress_policy.h"
#include "common/event_loop.h"
#include "common/rate_limiter.h"
#include "worker/circuit_breaker.h"
#include "worker/curl_fetcher.h"
#include "worker/request_runner.h"

namespace fetchfleet::worker {

class FetchShard {
 public:
  // `make_limiter` builds this shard's rate limiter on its loop (it may hand
  // back a shared, thread-safe one by a non-owning wrapper).
  using LimiterFactory =
      absl::AnyInvocable<std::unique_ptr<RateLimiter>(EventLoop* loop)>;
  // Likewise for its circuit breakers.
  using BreakerFactory =
      absl::AnyInvocable<std::unique_ptr<CircuitBreaker>(EventLoop* loop)>;

  FetchShard(const EgressPolicy* policy, LimiterFactory make_limiter,
             BreakerFactory make_breaker, CurlFetcher::Options fetcher_options,
             BackoffConfig backoff, std::string worker_name,
             RequestRunner::Complete on_complete,
             FetchObserver* observer = nullptr);
  ~FetchShard();  // stops and joins the thread

  EventLoop* loop() { return &loop_; }
  // Loop thread only.
  RequestRunner* runner() { return &runner_; }

 private:
  EventLoop loop_;
  std::unique_ptr<RateLimiter> limiter_;
  std::unique_ptr<CircuitBreaker> breaker_;
  CurlFetcher fetcher_;
  RequestRunner runner_;
  std::thread thread_;
};

}  // namespace fetchfleet::worker
