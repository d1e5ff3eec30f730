#include "worker/worker.h"

#include <algorithm>

#include "common/logging.h"
#include "common/trace_context.h"
#include "worker/redis_breaker.h"

namespace fetchfleet::worker {
namespace {

// Borrowed lends a shard the worker's shared, thread-safe local limiter.
class Borrowed final : public RateLimiter {
 public:
  explicit Borrowed(RateLimiter* target) : target_(target) {}
  void Reserve(absl::string_view key,
               absl::AnyInvocable<void(absl::Duration)> granted) override {
    target_->Reserve(key, std::move(granted));
  }
  void Pause(absl::string_view key, absl::Duration retry_after) override {
    target_->Pause(key, retry_after);
  }

 private:
  RateLimiter* const target_;
};

}  // namespace

absl::Duration BoundHeartbeatInterval(uint64_t ms) {
  return std::clamp(absl::Milliseconds(std::min<uint64_t>(ms, 3600000)),
                    absl::Milliseconds(50), absl::Seconds(60));
}

Worker::Worker(EventLoop* loop, std::shared_ptr<grpc::Channel> channel,
               const EgressPolicy* policy, WorkerOptions options)
    : loop_(loop),
      options_(std::move(options)),
      limits_(loop->clock()),
      local_limiter_(loop->clock(), &limits_),
      breakers_(loop->clock()),
      link_(loop, std::move(channel), this) {
  breakers_.set_event_listener([this, alive = alive_](v1::BreakerEvent event) {
    loop_->Post([this, alive, event = std::move(event)]() mutable {
      if (*alive) ReportBreakerEvent(std::move(event));
    });
  });
  if (options_.redis) {
    breaker_events_ =
        std::make_unique<BreakerEvents>(loop_, &breakers_, RedisOptions());
  }
  limits_.set_headroom(options_.rate_headroom);
  limits_.set_pause_listener(
      [this, alive = alive_](const std::string& key, absl::Duration duration) {
        loop_->Post([this, alive, key, duration] {
          if (*alive) ReportPause(key, duration);
        });
      });
  size_t count = static_cast<size_t>(std::max<int64_t>(options_.loops, 1));
  shard_load_.assign(count, 0);
  for (size_t i = 0; i < count; ++i) {
    // A completion hops from the shard's thread to the main loop.
    shards_.push_back(std::make_unique<FetchShard>(
        policy,
        [this](EventLoop* shard_loop) { return MakeLimiter(shard_loop); },
        [this](EventLoop* shard_loop) { return MakeBreaker(shard_loop); },
        options_.fetcher, options_.backoff, options_.name,
        [this, alive = alive_](uint64_t lease_id, v1::FetchResult result) {
          loop_->Post(
              [this, alive, lease_id, result = std::move(result)]() mutable {
                if (*alive) OnShardComplete(lease_id, std::move(result));
              });
        },
        options_.observer));
  }
}

RedisClient::Options Worker::RedisOptions() const {
  RedisClient::Options redis;
  redis.url = *options_.redis;
  redis.command_timeout = options_.redis_timeout;
  if (options_.metrics != nullptr) redis.stats = options_.metrics->redis();
  return redis;
}

std::unique_ptr<RateLimiter> Worker::MakeLimiter(EventLoop* shard_loop) {
  if (!options_.redis) return std::make_unique<Borrowed>(&local_limiter_);
  RedisRateLimiter::Options options;
  options.redis = RedisOptions();
  options.failure = options_.redis_failure;
  auto limiter = std::make_unique<RedisRateLimiter>(shard_loop, &limits_,
                                                    &local_limiter_, options);
  shard_loop->Post([l = limiter.get()] { l->Start(); });
  return limiter;
}

std::unique_ptr<CircuitBreaker> Worker::MakeBreaker(EventLoop* shard_loop) {
  if (!options_.redis) return std::make_unique<LocalCircuitBreaker>(&breakers_);
  RedisCircuitBreaker::Options options;
  options.redis = RedisOptions();
  options.worker_name = options_.name;
  auto breaker =
      std::make_unique<RedisCircuitBreaker>(shard_loop, &breakers_, options);
  shard_loop->Post([b = breaker.get()] { b->Start(); });
  return breaker;
}

void Worker::ReportBreakerEvent(v1::BreakerEvent event) {
  v1::WorkerMessage message;
  *message.add_breaker_events() = std::move(event);
  link_.Send(std::move(message));
}

void Worker::ReportPause(const std::string& key, absl::Duration duration) {
  v1::WorkerMessage message;
  v1::KeyPause* pause = message.add_paused();
  pause->set_key(key);
  pause->set_retry_after_ms(absl::ToInt64Milliseconds(duration));
  link_.Send(std::move(message));
}

Worker::~Worker() {
  *alive_ = false;
  shards_.clear();  // joins the fetch threads
}

void Worker::Start() {
  if (breaker_events_) breaker_events_->Start();
  link_.Start();
  ScheduleHeartbeat();
}

v1::WorkerMessage Worker::OnConnected() {
  v1::WorkerMessage hello;
  hello.set_name(options_.name);
  if (!draining_) {
    hello.set_credit(static_cast<uint32_t>(std::max<int64_t>(
        options_.max_inflight - static_cast<int64_t>(held()), 0)));
  }
  hello.set_draining(draining_);
  return hello;
}

void Worker::OnMessage(const v1::CoordinatorMessage& message) {
  if (options_.metrics != nullptr) options_.metrics->SetConnected(true);
  if (message.heartbeat_interval_ms() > 0) {
    heartbeat_interval_ =
        BoundHeartbeatInterval(message.heartbeat_interval_ms());
  }
  if (message.has_limits()) {
    limits_.Replace(message.limits());
    breakers_.set_live_workers(message.limits().live_workers());
  }
  if (message.has_breakers()) breakers_.SetConfigs(message.breakers());
  for (const std::string& key : message.breaker_resets()) breakers_.Reset(key);
  for (uint64_t lease_id : message.cancelled()) {
    auto it = held_.find(lease_id);
    if (it == held_.end()) continue;
    size_t shard = it->second;
    --shard_load_[shard];
    held_.erase(it);
    FetchShard* s = shards_[shard].get();
    s->loop()->Post([s, lease_id] { s->runner()->Cancel(lease_id); });
  }
  v1::WorkerMessage back;
  for (const v1::Assignment& assignment : message.assignments()) {
    if (held_.contains(assignment.lease_id())) continue;  // sent twice
    // Sent before the coordinator saw our drain, or past the credit this
    // worker granted (a coordinator's bug): hand it straight back. The worker
    // never holds more than --max-inflight.
    if (draining_ || static_cast<int64_t>(held()) >=
                         std::max<int64_t>(options_.max_inflight, 1)) {
      back.add_released(assignment.lease_id());
      continue;
    }
    Assign(assignment);
  }
  if (back.released_size() > 0) {
    if (!draining_) {
      FF_LOG(WARNING) << LogField(kLogWorker, options_.name)
                      << LogField("requests", back.released_size())
                      << "the coordinator assigned " << back.released_size()
                      << " requests past this worker's credit; handed back";
    }
    link_.Send(std::move(back));
  }
  FinishDrainIfIdle();
}

void Worker::Assign(v1::Assignment assignment) {
  if (options_.trace_root_ratio > 0 &&
      assignment.request().traceparent().empty() &&
      SampleRatio(options_.trace_root_ratio)) {
    assignment.mutable_request()->set_traceparent(
        FormatTraceparent(NewRootContext(/*sampled=*/true)));
  }
  size_t shard = std::min_element(shard_load_.begin(), shard_load_.end()) -
                 shard_load_.begin();
  ++shard_load_[shard];
  held_[assignment.lease_id()] = shard;
  FetchShard* s = shards_[shard].get();
  s->loop()->Post([s, assignment = std::move(assignment)]() mutable {
    s->runner()->Add(std::move(assignment));
  });
  NoteHeld();
}

void Worker::NoteHeld() {
  if (options_.metrics != nullptr)
    options_.metrics->SetInFlight(static_cast<int64_t>(held()));
}

void Worker::OnDisconnected() {
  // The coordinator re-queues everything this stream held; finishing it would
  // be wasted.
  if (!held_.empty()) {
    FF_LOG(WARNING) << LogField(kLogWorker, options_.name)
                    << LogField("requests", held_.size())
                    << "lost the coordinator; abandoning " << held_.size()
                    << " requests";
  }
  held_.clear();
  std::fill(shard_load_.begin(), shard_load_.end(), 0);
  if (options_.metrics != nullptr) options_.metrics->SetConnected(false);
  NoteHeld();
  for (auto& shard : shards_) {
    FetchShard* s = shard.get();
    s->loop()->Post([s] { s->runner()->CancelAll(); });
  }
  FinishDrainIfIdle();
}

void Worker::OnShardComplete(uint64_t lease_id, v1::FetchResult result) {
  auto it = held_.find(lease_id);
  if (it == held_.end())
    return;  // its stream ended: the coordinator re-queued it
  --shard_load_[it->second];
  held_.erase(it);
  // One completion per message: the link batches them on the way out.
  v1::WorkerMessage message;
  v1::Completion* completion = message.add_completions();
  completion->set_lease_id(lease_id);
  *completion->mutable_result() = std::move(result);
  if (!draining_) message.set_credit(1);
  message.set_in_flight(held());
  NoteHeld();
  link_.Send(std::move(message));
  FinishDrainIfIdle();
}

void Worker::OnReleased(std::vector<uint64_t> lease_ids) {
  v1::WorkerMessage message;
  for (uint64_t lease_id : lease_ids) {
    auto it = held_.find(lease_id);
    if (it == held_.end()) continue;
    --shard_load_[it->second];
    held_.erase(it);
    message.add_released(lease_id);
  }
  drain_released_ += message.released_size();
  NoteHeld();
  if (++drain_answers_ == shards_.size()) {
    FF_LOG(INFO) << LogField(kLogWorker, options_.name)
                 << LogField("released", drain_released_)
                 << LogField("in_flight", held()) << "draining: handed back "
                 << drain_released_ << " unstarted requests, " << held()
                 << " in flight";
  }
  if (message.released_size() > 0) link_.Send(std::move(message));
  FinishDrainIfIdle();
}

void Worker::ScheduleHeartbeat() {
  heartbeat_timer_ = loop_->RunAfter(heartbeat_interval_, [this] {
    if (link_.connected() &&
        loop_->Now() - link_.last_send() >= heartbeat_interval_ * 0.9) {
      v1::WorkerMessage beat;
      beat.set_in_flight(held());
      link_.Send(std::move(beat));
    }
    ScheduleHeartbeat();
  });
}

void Worker::Drain(absl::AnyInvocable<void()> done) {
  if (draining_) return;
  draining_ = true;
  if (options_.metrics != nullptr) options_.metrics->SetDraining(true);
  drained_ = std::move(done);
  v1::WorkerMessage message;
  message.set_draining(true);
  link_.Send(std::move(message));
  // Each shard hands back what it has not started; the answers come back to
  // this loop.
  for (auto& shard : shards_) {
    FetchShard* s = shard.get();
    s->loop()->Post([this, s, alive = alive_] {
      std::vector<uint64_t> released = s->runner()->ReleaseUnstarted();
      loop_->Post([this, alive, released = std::move(released)]() mutable {
        if (*alive) OnReleased(std::move(released));
      });
    });
  }
  loop_->RunAfter(options_.drain_timeout, [this] {
    if (drain_closing_) return;
    FF_LOG(WARNING) << LogField(kLogWorker, options_.name)
                    << LogField("requests", held())
                    << "drain timeout: abandoning " << held() << " requests";
    OnDisconnected();
  });
  FinishDrainIfIdle();
}

void Worker::FinishDrainIfIdle() {
  if (!draining_ || drain_closing_ || !held_.empty()) return;
  drain_closing_ = true;
  loop_->CancelTimer(heartbeat_timer_);
  link_.Close([this] {
    FF_LOG(INFO) << LogField(kLogWorker, options_.name) << "drained";
    if (drained_) std::move(drained_)();
  });
}

}  // namespace fetchfleet::worker
