// CallOnLoop: run a function on an event loop's thread and wait for its
// value from another thread (a metrics scrape, a readiness probe), for at most
// `timeout`. nullopt when the loop did not get to it in time: it is stalled
// or stopping, which is an answer too (not ready). The function still runs
// later if the loop gets to it; it must only touch what the loop owns.
#pragma once

#include <memory>
#include <optional>

#include "absl/functional/any_invocable.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/event_loop.h"

namespace fetchfleet {

template <typename T>
std::optional<T> CallOnLoop(EventLoop* loop, absl::AnyInvocable<T()> fn,
                            absl::Duration timeout) {
  struct Answer {
    absl::Mutex mu;
    std::optional<T> value;
  };
  auto answer = std::make_shared<Answer>();
  loop->Post([answer, fn = std::move(fn)]() mutable {
    T value = fn();
    absl::MutexLock lock(&answer->mu);
    answer->value = std::move(value);
  });
  absl::MutexLock lock(&answer->mu);
  answer->mu.AwaitWithTimeout(
      absl::Condition(
          +[](std::optional<T>* value) { return value->has_value(); },
          &answer->value),
      timeout);
  return std::move(answer->value);
}

}  // namespace fetchfleet
