// CoordinatorLink: the worker's one bidi stream to the coordinator, through
// gRPC's callback client. Every reaction posts onto the worker's loop; all link
// state lives there. Messages to the coordinator are queued and written one at
// a time, and everything queued meanwhile is merged into the next write.
// Completions also wait up to 1 ms (or for 256) before a write starts: at tens
// of thousands of results a second, per-message costs dominate, on the
// coordinator above all. Anything else (hello, drain, handed-back leases) goes
// at once.
//
// Merging stops at kMaxMessageBytes of serialized size: a batch past gRPC's
// message limit is refused by gRPC and breaks the stream, and with it every
// lease the worker holds. A single message larger than the batch budget goes
// alone (a result with a body near the 32 MiB cap); a result that would make
// its message larger than kMaxLoneMessageBytes is sent as `too_large`, its
// body (and, if need be, headers) dropped.
//
// When the stream breaks, the link tells its handler (the coordinator has
// already taken the worker's leases back) and reconnects with capped
// exponential backoff and jitter.
//
// Loop thread only.
#pragma once

#include <grpcpp/grpcpp.h>

#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/random/random.h"
#include "common/event_loop.h"
#include "common/wire_limits.h"
#include "proto/fetchfleet.grpc.pb.h"

namespace fetchfleet::worker {

// The most one message to the coordinator may carry when it goes alone: a
// result with a body at the 32 MiB cap, its headers and the rest, well under
// the 64 MiB gRPC limit both ends set (kMaxReceiveMessageBytes).
inline constexpr size_t kMaxLoneMessageBytes = kMaxBodyCapBytes + (8 << 20);
static_assert(kMaxLoneMessageBytes < kMaxReceiveMessageBytes);

// FitForWire makes `message` sendable: every completion whose result would
// make a message over `lone_limit` bytes becomes a `too_large` result (body,
// then headers, dropped; the rest kept), and a message still over
// `batch_budget` with several completions is split into one message per
// completion (the first keeping everything else). Returns the pieces, in order.
std::vector<v1::WorkerMessage> FitForWire(v1::WorkerMessage message,
                                          size_t batch_budget,
                                          size_t lone_limit);

// MergeWorkerMessages takes messages from the front of `queue`, which must not
// be empty, while together they stay within `budget` serialized bytes (the
// first always, whatever its size), and folds them into one: credit summed,
// every completion, release, pause and breaker change kept, the latest
// in-flight count. The rest stay queued.
v1::WorkerMessage MergeWorkerMessages(std::deque<v1::WorkerMessage>* queue,
                                      size_t budget = kMaxMessageBytes);

class CoordinatorLink {
 public:
  class Handler {
   public:
    virtual ~Handler() = default;
    // A new stream is up: the handler returns its hello (name, initial credit).
    virtual v1::WorkerMessage OnConnected() = 0;
    virtual void OnMessage(const v1::CoordinatorMessage& message) = 0;
    // The stream ended; everything it carried is void.
    virtual void OnDisconnected() = 0;
  };

  CoordinatorLink(EventLoop* loop, std::shared_ptr<grpc::Channel> channel,
                  Handler* handler);
  ~CoordinatorLink();

  void Start();
  // Send queues a message on the current stream (dropped when there is none).
  void Send(v1::WorkerMessage message);
  // Close ends the stream politely (half-close) and does not reconnect;
  // `closed` runs on the loop when the stream is gone.
  void Close(absl::AnyInvocable<void()> closed);
  bool connected() const { return stream_ != nullptr && welcomed_; }
  absl::Time last_send() const { return last_send_; }

 private:
  class Stream;
  friend class Stream;

  void Connect();
  void OnStreamMessage(Stream* stream, v1::CoordinatorMessage message);
  void OnStreamWriteDone(Stream* stream, bool ok);
  void OnStreamBroken(Stream* stream);
  void OnStreamDone(Stream* stream, const grpc::Status& status);
  void PumpWrites();
  void WriteQueued();
  void MaybeHalfClose();

  EventLoop* const loop_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::WorkerService::Stub> stub_;
  Handler* const handler_;
  absl::BitGen gen_;

  Stream* stream_ = nullptr;  // owned by gRPC until OnDone
  bool welcomed_ = false;
  bool writing_ = false;
  std::deque<v1::WorkerMessage> queue_;
  bool closing_ = false;
  absl::AnyInvocable<void()> closed_;
  int failures_ = 0;
  static constexpr absl::Duration kBatchDelay = absl::Milliseconds(1);
  static constexpr size_t kBatchSize = 256;
  EventLoop::TimerId batch_timer_ = 0;
  EventLoop::TimerId reconnect_timer_ = 0;
  EventLoop::TimerId close_deadline_timer_ = 0;
  absl::Time last_send_;
};

}  // namespace fetchfleet::worker
