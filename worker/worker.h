// Worker: wires one worker process together. The coordinator link lives on the
// worker's main loop; fetching happens on N FetchShards (one event loop,
// libcurl multi handle and runner each, on its own thread). The worker deals
// each assignment to the least-loaded shard and relays completions back to the
// coordinator.
//
// It grants the coordinator credit for as many requests as it may hold
// (--max-inflight), returns one credit per completed request, heartbeats when
// idle, and drains on request: no new work, unstarted work handed back,
// in-flight work finished.
//
// Main-loop thread only (construct anywhere, then call everything on the main
// loop).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/functional/any_invocable.h"
#include "common/egress_policy.h"
#include "common/event_loop.h"
#include "common/rate_limiter.h"
#include "common/redis_client.h"
#include "worker/breaker_events.h"
#include "worker/breaker_set.h"
#include "worker/coordinator_link.h"
#include "worker/fetch_shard.h"
#include "worker/redis_rate_limiter.h"
#include "worker/worker_metrics.h"

namespace fetchfleet::worker {

struct WorkerOptions {
  std::string name;
  int64_t max_inflight = 512;
  int64_t loops = 1;  // fetch threads
  absl::Duration drain_timeout = absl::Seconds(30);
  CurlFetcher::Options fetcher;
  BackoffConfig backoff;
  // Fleet-wide rate limits in Redis; without it, limits are kept in this
  // process (each worker takes R / live workers).
  std::optional<RedisUrl> redis;
  RedisFailureMode redis_failure = RedisFailureMode::kClosed;
  absl::Duration redis_timeout = absl::Milliseconds(500);
  // Fraction of each rate left unspent (see LimitTable::set_headroom).
  double rate_headroom = 0.02;
  // Told about every attempt and result (metrics, traces); may be null.
  // Must outlive the worker.
  FetchObserver* observer = nullptr;
  // Told the worker's connection state, held requests and Redis round trips;
  // may be null. Must outlive the worker.
  WorkerMetrics* metrics = nullptr;
  // A request that comes without a trace context starts a new sampled trace
  // with this probability (0: never; set with --otlp-endpoint only).
  double trace_root_ratio = 0;
};

// BoundHeartbeatInterval holds the coordinator's heartbeat interval to 50 ms -
// 60 s: 1 ms would flood it with heartbeats, an hour would get this worker
// declared dead.
absl::Duration BoundHeartbeatInterval(uint64_t ms);

class Worker final : public CoordinatorLink::Handler {
 public:
  Worker(EventLoop* loop, std::shared_ptr<grpc::Channel> channel,
         const EgressPolicy* policy, WorkerOptions options);
  ~Worker() override;

  void Start();
  // Drain finishes what is in flight (up to the drain timeout), hands back what
  // has not started, closes the stream, then runs `done`.
  void Drain(absl::AnyInvocable<void()> done);

  v1::WorkerMessage OnConnected() override;
  void OnMessage(const v1::CoordinatorMessage& message) override;
  void OnDisconnected() override;

 private:
  void Assign(v1::Assignment assignment);
  // RedisOptions: each Redis connection's settings (with --redis only).
  RedisClient::Options RedisOptions() const;
  std::unique_ptr<RateLimiter> MakeLimiter(EventLoop* shard_loop);
  std::unique_ptr<CircuitBreaker> MakeBreaker(EventLoop* shard_loop);
  void ReportPause(const std::string& key, absl::Duration duration);
  void ReportBreakerEvent(v1::BreakerEvent event);
  void OnShardComplete(uint64_t lease_id, v1::FetchResult result);
  void OnReleased(std::vector<uint64_t> lease_ids);
  // NoteHeld tells the metrics how many requests this worker holds.
  void NoteHeld();
  void ScheduleHeartbeat();
  void FinishDrainIfIdle();
  size_t held() const { return held_.size(); }

  EventLoop* const loop_;
  const WorkerOptions options_;
  // The fleet's limits as the coordinator pushed them; read by every shard.
  LimitTable limits_;
  LocalRateLimiter local_limiter_;
  // Breaker settings, cached fleet views and local breakers, for every shard.
  BreakerSet breakers_;
  std::unique_ptr<BreakerEvents> breaker_events_;  // with Redis only
  std::vector<std::unique_ptr<FetchShard>> shards_;
  std::vector<size_t> shard_load_;
  // The leases this worker holds now. A completion or release for a lease not
  // held (its stream ended since) is dropped: lease ids are never reissued by a
  // coordinator.
  absl::flat_hash_map<uint64_t, size_t> held_;  // lease id -> shard index
  CoordinatorLink link_;
  absl::Duration heartbeat_interval_ = absl::Seconds(1);
  EventLoop::TimerId heartbeat_timer_ = 0;
  bool draining_ = false;
  bool drain_closing_ = false;
  // Shards that answered the drain, and the requests they handed back: one
  // log line once all have.
  size_t drain_answers_ = 0;
  size_t drain_released_ = 0;
  absl::AnyInvocable<void()> drained_;
  // Cleared in the destructor so callbacks already queued on the loop do
  // nothing.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace fetchfleet::worker
