#include "worker/worker.h"

#include "common/logging.h"

namespace fetchfleet::worker {

Worker::Worker(EventLoop* loop, std::shared_ptr<grpc::Channel> channel,
               const EgressPolicy* policy, RateLimiter* limiter,
               WorkerOptions options)
    : loop_(loop),
      options_(std::move(options)),
      fetcher_(loop, policy, options_.fetcher),
      runner_(loop, &fetcher_, limiter, options_.backoff, options_.name,
              [this](uint64_t lease_id, v1::FetchResult result) {
                OnComplete(lease_id, std::move(result));
              }),
      link_(loop, std::move(channel), this) {}

void Worker::Start() {
  link_.Start();
  ScheduleHeartbeat();
}

v1::WorkerMessage Worker::OnConnected() {
  v1::WorkerMessage hello;
  hello.set_name(options_.name);
  if (!draining_) {
    hello.set_credit(static_cast<uint32_t>(std::max<int64_t>(
        options_.max_inflight - static_cast<int64_t>(runner_.size()), 0)));
  }
  hello.set_draining(draining_);
  return hello;
}

void Worker::OnMessage(const v1::CoordinatorMessage& message) {
  if (message.heartbeat_interval_ms() > 0) {
    heartbeat_interval_ = absl::Milliseconds(message.heartbeat_interval_ms());
  }
  for (uint64_t lease_id : message.cancelled()) runner_.Cancel(lease_id);
  for (const v1::Assignment& assignment : message.assignments()) {
    if (draining_) {
      // Sent before the coordinator saw our drain: hand it straight back.
      v1::WorkerMessage back;
      back.add_released(assignment.lease_id());
      link_.Send(std::move(back));
      continue;
    }
    runner_.Add(assignment);
  }
  FinishDrainIfIdle();
}

void Worker::OnDisconnected() {
  // The coordinator re-queues everything this stream held; finishing it would
  // be wasted.
  if (runner_.size() > 0) {
    FF_LOG(WARNING) << "lost the coordinator; abandoning " << runner_.size()
                    << " requests";
  }
  runner_.CancelAll();
}

void Worker::OnComplete(uint64_t lease_id, v1::FetchResult result) {
  v1::WorkerMessage message;
  v1::Completion* completion = message.add_completions();
  completion->set_lease_id(lease_id);
  *completion->mutable_result() = std::move(result);
  if (!draining_) message.set_credit(1);
  message.set_in_flight(runner_.size());
  link_.Send(std::move(message));
  FinishDrainIfIdle();
}

void Worker::ScheduleHeartbeat() {
  heartbeat_timer_ = loop_->RunAfter(heartbeat_interval_, [this] {
    if (link_.connected() &&
        loop_->Now() - link_.last_send() >= heartbeat_interval_ * 0.9) {
      v1::WorkerMessage beat;
      beat.set_in_flight(runner_.size());
      link_.Send(std::move(beat));
    }
    ScheduleHeartbeat();
  });
}

void Worker::Drain(absl::AnyInvocable<void()> done) {
  if (draining_) return;
  draining_ = true;
  drained_ = std::move(done);
  v1::WorkerMessage message;
  message.set_draining(true);
  for (uint64_t lease_id : runner_.ReleaseUnstarted())
    message.add_released(lease_id);
  FF_LOG(INFO) << "draining: handed back " << message.released_size()
               << " unstarted requests, " << runner_.size() << " in flight";
  link_.Send(std::move(message));
  loop_->RunAfter(options_.drain_timeout, [this] {
    if (drain_closing_) return;
    FF_LOG(WARNING) << "drain timeout: abandoning " << runner_.size()
                    << " requests";
    runner_.CancelAll();
    FinishDrainIfIdle();
  });
  FinishDrainIfIdle();
}

void Worker::FinishDrainIfIdle() {
  if (!draining_ || drain_closing_ || runner_.size() > 0) return;
  drain_closing_ = true;
  loop_->CancelTimer(heartbeat_timer_);
  link_.Close([this] {
    FF_LOG(INFO) << "drained";
    if (drained_) std::move(drained_)();
  });
}

}  // namespace fetchfleet::worker
