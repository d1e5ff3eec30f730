// CallOnLoop: run a function on an event loop's thread and wait for its
// value from another thread (a metrics scrape, a readiness probe), for at most
// `timeout`. nullopt when the loop did not get to it in time: it is stalled
// or stopping, which is an answer too (not ready). The function still runs
// later if the loop gets to it; it must only touch what the loop owns.
#pragma once

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>

#include "absl/functional/any_invocable.h"
#include "absl/time/time.h"
#include "common/event_loop.h"

namespace fetchfleet {

template <typename T>
std::optional<T> CallOnLoop(EventLoop* loop, absl::AnyInvocable<T()> fn,
                            absl::Duration timeout) {
  // std::mutex, not absl::Mutex: ThreadSanitizer sees pthread's locking even
  // in uninstrumented libraries, so the handoff is checked, not imagined.
  struct Answer {
    std::mutex mu;
    std::condition_variable ready;
    std::optional<T> value;
  };
  auto answer = std::make_shared<Answer>();
  loop->Post([answer, fn = std::move(fn)]() mutable {
    T value = fn();
    std::lock_guard<std::mutex> lock(answer->mu);
    answer->value = std::move(value);
    answer->ready.notify_all();
  });
  std::unique_lock<std::mutex> lock(answer->mu);
  answer->ready.wait_for(
      lock, std::chrono::microseconds(absl::ToInt64Microseconds(timeout)),
      [&] { return answer->value.has_value(); });
  return std::move(answer->value);
}

}  // namespace fetchfleet
