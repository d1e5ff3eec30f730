// Worker: wires one worker process's parts on its loop: the coordinator link,
// the request runner and the fetcher. It grants the coordinator credit for as
// many requests as it may hold (--max-inflight), returns one credit per
// completed request, heartbeats when idle, and drains on request: no new work,
// unstarted work handed back, in-flight work finished.
//
// Loop thread only (construct anywhere, then call everything on the loop).
#pragma once

#include <memory>
#include <string>

#include "absl/functional/any_invocable.h"
#include "common/egress_policy.h"
#include "common/event_loop.h"
#include "common/rate_limiter.h"
#include "worker/coordinator_link.h"
#include "worker/curl_fetcher.h"
#include "worker/request_runner.h"

namespace fetchfleet::worker {

struct WorkerOptions {
  std::string name;
  int64_t max_inflight = 512;
  absl::Duration drain_timeout = absl::Seconds(30);
  CurlFetcher::Options fetcher;
  BackoffConfig backoff;
};

class Worker final : public CoordinatorLink::Handler {
 public:
  Worker(EventLoop* loop, std::shared_ptr<grpc::Channel> channel,
         const EgressPolicy* policy, RateLimiter* limiter,
         WorkerOptions options);

  void Start();
  // Drain finishes what is in flight (up to the drain timeout), hands back what
  // has not started, closes the stream, then runs `done`.
  void Drain(absl::AnyInvocable<void()> done);

  v1::WorkerMessage OnConnected() override;
  void OnMessage(const v1::CoordinatorMessage& message) override;
  void OnDisconnected() override;

 private:
  void OnComplete(uint64_t lease_id, v1::FetchResult result);
  void ScheduleHeartbeat();
  void FinishDrainIfIdle();

  EventLoop* const loop_;
  const WorkerOptions options_;
  CurlFetcher fetcher_;
  RequestRunner runner_;
  CoordinatorLink link_;
  absl::Duration heartbeat_interval_ = absl::Seconds(1);
  EventLoop::TimerId heartbeat_timer_ = 0;
  bool draining_ = false;
  bool drain_closing_ = false;
  absl::AnyInvocable<void()> drained_;
};

}  // namespace fetchfleet::worker
