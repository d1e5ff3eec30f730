#include "worker/coordinator_link.h"

#include "absl/random/distributions.h"
#include "absl/strings/str_cat.h"
#include "common/logging.h"

namespace fetchfleet::worker {

// Stream: one call's reactor. gRPC owns it until OnDone; every reaction posts
// to the loop.
class CoordinatorLink::Stream final
    : public grpc::ClientBidiReactor<v1::WorkerMessage,
                                     v1::CoordinatorMessage> {
 public:
  Stream(CoordinatorLink* link, v1::WorkerService::Stub* stub) : link_(link) {
    stub->async()->Connect(&context_, this);
    StartRead(&in_);
    // Writes start from the loop, outside reactions: the hold keeps OnDone from
    // running until the link lets go.
    AddHold();
    StartCall();
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      link_->loop_->Post([this] { link_->OnStreamBroken(this); });
      return;
    }
    link_->loop_->Post([this, message = std::move(in_)]() mutable {
      link_->OnStreamMessage(this, std::move(message));
    });
  }
  void OnWriteDone(bool ok) override {
    link_->loop_->Post([this, ok] { link_->OnStreamWriteDone(this, ok); });
  }
  void OnDone(const grpc::Status& status) override {
    link_->loop_->Post([this, status] {
      link_->OnStreamDone(this, status);
      delete this;
    });
  }

  // Loop thread. Only while the hold is held may an operation start: without
  // it the call may already be over (OnDone on its way), and a read that
  // completed before and is handled after would StartRead on a finished call.
  void Write(v1::WorkerMessage message) {
    if (released_) return;
    out_ = std::move(message);
    StartWrite(&out_);
  }
  void ReadNext() {
    if (held_) StartRead(&in_);
  }
  // Release(false) half-closes and keeps reading until the server ends the
  // call (gRPC delivers the status only once every message has been read),
  // then the failed read's Release(true) lets the call go. Release(true)
  // cancels and lets go at once, also after a Release(false) whose server
  // never ends the call.
  void Release(bool cancel) {
    if (cancel) context_.TryCancel();
    if (!released_) {
      released_ = true;
      if (!cancel) {
        StartWritesDone();
        return;
      }
    }
    if (held_) {
      held_ = false;
      RemoveHold();
    }
  }

 private:
  CoordinatorLink* const link_;
  grpc::ClientContext context_;
  v1::CoordinatorMessage in_;
  v1::WorkerMessage out_;
  bool released_ = false;
  bool held_ = true;
};

CoordinatorLink::CoordinatorLink(EventLoop* loop,
                                 std::shared_ptr<grpc::Channel> channel,
                                 Handler* handler)
    : loop_(loop),
      channel_(std::move(channel)),
      stub_(v1::WorkerService::NewStub(channel_)),
      handler_(handler) {}

CoordinatorLink::~CoordinatorLink() {
  if (batch_timer_ != 0) loop_->CancelTimer(batch_timer_);
  if (reconnect_timer_ != 0) loop_->CancelTimer(reconnect_timer_);
  if (close_deadline_timer_ != 0) loop_->CancelTimer(close_deadline_timer_);
}

void CoordinatorLink::Start() { Connect(); }

void CoordinatorLink::Connect() {
  reconnect_timer_ = 0;
  if (closing_) return;
  welcomed_ = false;
  writing_ = false;
  queue_.clear();
  stream_ = new Stream(this, stub_.get());
  queue_.push_back(handler_->OnConnected());
  PumpWrites();
}

void CoordinatorLink::Send(v1::WorkerMessage message) {
  if (stream_ == nullptr || closing_) return;
  for (v1::WorkerMessage& piece :
       FitForWire(std::move(message), kMaxMessageBytes, kMaxLoneMessageBytes)) {
    queue_.push_back(std::move(piece));
  }
  PumpWrites();
}

namespace {

// Room left in a lone message for everything but its one completion's result.
constexpr size_t kEnvelopeBytes = 4096;

std::string MiB(size_t bytes) {
  return absl::StrCat(bytes / (1 << 20), " MiB");
}

// ShrinkToTooLarge turns `result`, too large for a message of `limit` bytes,
// into a too_large result: the body goes, then the headers if still needed.
// Everything else (status, attempts, latency, body_bytes...) is kept.
void ShrinkToTooLarge(v1::FetchResult* result, size_t limit) {
  size_t size = result->ByteSizeLong();
  result->clear_body();
  std::string dropped = "body";
  if (result->ByteSizeLong() + kEnvelopeBytes > limit) {
    result->clear_headers();
    dropped = "body and headers";
  }
  result->set_ok(false);
  result->set_error(v1::ERROR_TOO_LARGE);
  result->set_error_message(
      absl::StrCat("the result (", size, " bytes) is over the ", MiB(limit),
                   " a worker's message to the coordinator may carry; its ",
                   dropped, " dropped"));
}

// Only completions (with the credit they return) may wait to be batched; a
// hello, a drain notice, handed-back leases, an upstream's pause and a breaker
// change go at once.
bool CanWait(const v1::WorkerMessage& m) {
  return m.name().empty() && !m.draining() && m.released_size() == 0 &&
         m.paused_size() == 0 && m.breaker_events_size() == 0;
}

}  // namespace

void CoordinatorLink::PumpWrites() {
  if (stream_ == nullptr || writing_ || queue_.empty()) return;
  // Per-message costs dominate at tens of thousands of results a second, so
  // completions wait up to kBatchDelay for company (or until kBatchSize of
  // them are queued, or a batch's worth of bytes). Everything queued
  // meanwhile goes out in as few messages as the byte budget allows.
  size_t completions = 0;
  size_t bytes = 0;
  bool can_wait = !closing_;
  for (const v1::WorkerMessage& m : queue_) {
    completions += m.completions_size();
    bytes += m.ByteSizeLong();
    can_wait = can_wait && CanWait(m);
  }
  if (can_wait && completions < kBatchSize && bytes < kMaxMessageBytes) {
    if (batch_timer_ == 0) {
      batch_timer_ = loop_->RunAfter(kBatchDelay, [this] {
        batch_timer_ = 0;
        WriteQueued();
      });
    }
    return;
  }
  WriteQueued();
}

void CoordinatorLink::WriteQueued() {
  if (stream_ == nullptr || writing_ || queue_.empty()) return;
  if (batch_timer_ != 0) {
    loop_->CancelTimer(batch_timer_);
    batch_timer_ = 0;
  }
  v1::WorkerMessage merged = MergeWorkerMessages(&queue_);
  writing_ = true;
  last_send_ = loop_->Now();
  stream_->Write(std::move(merged));
}

std::vector<v1::WorkerMessage> FitForWire(v1::WorkerMessage message,
                                          size_t batch_budget,
                                          size_t lone_limit) {
  for (v1::Completion& c : *message.mutable_completions()) {
    if (c.ByteSizeLong() + kEnvelopeBytes > lone_limit) {
      ShrinkToTooLarge(c.mutable_result(), lone_limit);
    }
  }
  std::vector<v1::WorkerMessage> pieces;
  if (message.completions_size() <= 1 ||
      message.ByteSizeLong() <= batch_budget) {
    pieces.push_back(std::move(message));
    return pieces;
  }
  google::protobuf::RepeatedPtrField<v1::Completion> completions;
  completions.Swap(message.mutable_completions());
  pieces.push_back(std::move(message));
  for (v1::Completion& c : completions) {
    if (pieces.front().completions_size() == 0) {
      *pieces.front().add_completions() = std::move(c);
      continue;
    }
    v1::WorkerMessage piece;
    *piece.add_completions() = std::move(c);
    pieces.push_back(std::move(piece));
  }
  return pieces;
}

v1::WorkerMessage MergeWorkerMessages(std::deque<v1::WorkerMessage>* queue,
                                      size_t budget) {
  v1::WorkerMessage merged = std::move(queue->front());
  queue->pop_front();
  // The parts' sizes add up to at least the merged message's: repeated fields
  // concatenate, scalars overlap.
  size_t size = merged.ByteSizeLong();
  while (!queue->empty()) {
    v1::WorkerMessage& m = queue->front();
    size_t m_size = m.ByteSizeLong();
    if (size + m_size > budget) break;
    size += m_size;
    merged.set_credit(merged.credit() + m.credit());
    for (auto& c : *m.mutable_completions())
      *merged.add_completions() = std::move(c);
    for (uint64_t id : m.released()) merged.add_released(id);
    for (auto& p : *m.mutable_paused()) *merged.add_paused() = std::move(p);
    for (auto& e : *m.mutable_breaker_events())
      *merged.add_breaker_events() = std::move(e);
    merged.set_draining(merged.draining() || m.draining());
    merged.set_in_flight(m.in_flight());
    queue->pop_front();
  }
  return merged;
}

void CoordinatorLink::OnStreamMessage(Stream* stream,
                                      v1::CoordinatorMessage message) {
  if (stream != stream_) return;
  if (!welcomed_) {
    welcomed_ = true;
    if (failures_ > 0) FF_LOG(INFO) << "connected to the coordinator";
    failures_ = 0;
  }
  handler_->OnMessage(message);
  if (stream == stream_) stream->ReadNext();
}

void CoordinatorLink::OnStreamWriteDone(Stream* stream, bool ok) {
  if (stream != stream_) return;
  writing_ = false;
  if (!ok) return;  // the read side reports the break
  PumpWrites();
  MaybeHalfClose();
}

void CoordinatorLink::OnStreamBroken(Stream* stream) {
  if (stream != stream_) return;
  stream->Release(/*cancel=*/true);
}

void CoordinatorLink::OnStreamDone(Stream* stream, const grpc::Status& status) {
  if (stream != stream_) return;
  stream_ = nullptr;
  bool was_welcomed = welcomed_;
  welcomed_ = false;
  handler_->OnDisconnected();
  if (closing_) {
    if (close_deadline_timer_ != 0) loop_->CancelTimer(close_deadline_timer_);
    close_deadline_timer_ = 0;
    if (closed_) std::move(closed_)();
    return;
  }
  ++failures_;
  // Capped exponential backoff with full jitter: 100 ms doubling to 5 s.
  absl::Duration ceiling =
      absl::Milliseconds(100) * (1 << std::min(failures_ - 1, 6));
  ceiling = std::min(ceiling, absl::Seconds(5));
  absl::Duration delay = absl::Microseconds(absl::Uniform<int64_t>(
      absl::IntervalClosedClosed, gen_, absl::ToInt64Microseconds(ceiling) / 2,
      absl::ToInt64Microseconds(ceiling)));
  if (was_welcomed || failures_ == 1 || failures_ % 20 == 0) {
    FF_LOG(WARNING) << "coordinator stream ended (" << status.error_message()
                    << "); reconnecting in " << absl::FormatDuration(delay);
  }
  reconnect_timer_ = loop_->RunAfter(delay, [this] { Connect(); });
}

void CoordinatorLink::Close(absl::AnyInvocable<void()> closed) {
  closing_ = true;
  closed_ = std::move(closed);
  if (reconnect_timer_ != 0) {
    loop_->CancelTimer(reconnect_timer_);
    reconnect_timer_ = 0;
  }
  if (stream_ == nullptr) {
    if (closed_) std::move(closed_)();
    return;
  }
  PumpWrites();  // closing_: nothing waits for a batch any more
  // Queued messages (the final results) go first, then the half-close; a stream
  // that will not drain is cancelled after 5 s.
  MaybeHalfClose();
  close_deadline_timer_ = loop_->RunAfter(absl::Seconds(5), [this] {
    close_deadline_timer_ = 0;
    if (stream_ == nullptr) return;
    FF_LOG(WARNING) << "the coordinator did not end the stream within 5 s of "
                       "the half-close; cancelling it";
    stream_->Release(/*cancel=*/true);
  });
}

void CoordinatorLink::MaybeHalfClose() {
  if (closing_ && stream_ != nullptr && !writing_ && queue_.empty()) {
    stream_->Release(/*cancel=*/false);
  }
}

}  // namespace fetchfleet::worker
