// fetchctl's SIGINT and SIGTERM. While a job stream is read (submit, watch),
// the first signal cancels that call instead of killing fetchctl, so that it
// ends the way it ends on any other stop: what it received is written, and it
// says that the job keeps running and how to resume. With no stream being
// read, or on a second signal, the signal ends fetchctl as it always did.
//
// Thread-safe.
#pragma once

#include <grpcpp/grpcpp.h>

#include <functional>

namespace fetchfleet::fetchctl {

// InstallInterruptHandler blocks the signals and starts the thread that waits
// for them. Call it first in main(), before any other thread exists (threads
// inherit the mask).
void InstallInterruptHandler();

// InterruptScope routes a signal to `context` (TryCancel), or to `on_signal`
// (called on the signal thread, with the signal), while it lives.
class InterruptScope {
 public:
  explicit InterruptScope(grpc::ClientContext* context);
  explicit InterruptScope(std::function<void(int)> on_signal);
  ~InterruptScope();
  InterruptScope(const InterruptScope&) = delete;
  InterruptScope& operator=(const InterruptScope&) = delete;

  // signal: the signal that cancelled the call, or 0.
  int signal() const;
};

}  // namespace fetchfleet::fetchctl
