// EventLoop: one thread's epoll loop with fd watches, timers and a cross-thread
// task queue.
//
// Everything bound to a loop (a CURLM, sockets, timers, the state of the
// objects it drives) is touched on the loop's thread only. Post() is the one
// thread-safe way in: it queues a task and wakes the loop through an eventfd.
// Run() executes on the calling thread until Stop(); tasks posted before Stop()
// still run.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/time/time.h"
#include "common/clock.h"

namespace fetchfleet {

class EventLoop {
 public:
  using Task = absl::AnyInvocable<void()>;
  // Called with the epoll event bits (EPOLLIN, EPOLLOUT, EPOLLERR, ...).
  using FdCallback = absl::AnyInvocable<void(uint32_t events)>;
  using TimerId = uint64_t;

  explicit EventLoop(const Clock* clock = Clock::Real());
  ~EventLoop();
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  // Thread-safe. Post queues `task` to run on the loop thread. The queue is fed
  // only by reactions that are themselves flow-controlled (one outstanding read
  // per gRPC stream, credit-limited batches), so its length is bounded by the
  // number of streams.
  void Post(Task task);
  // Thread-safe. Stop makes Run() return after the tasks already posted have
  // run.
  void Stop();
  // Run processes events on the calling thread until Stop().
  void Run();
  // Thread-safe. True when called on the thread inside Run().
  bool IsLoopThread() const;

  // Loop thread only (or before Run). WatchFd adds or changes the watch on
  // `fd`.
  void WatchFd(int fd, uint32_t events, FdCallback callback);
  // Loop thread only. UpdateFd changes the events of an existing watch.
  void UpdateFd(int fd, uint32_t events);
  // Loop thread only. UnwatchFd removes the watch; it does not close `fd`.
  void UnwatchFd(int fd);

  // Loop thread only. RunAfter runs `task` once after `delay`; it returns a
  // handle for CancelTimer. Timers due at the same time run in the order they
  // were added.
  TimerId RunAfter(absl::Duration delay, Task task);
  // Loop thread only. Cancelling a timer that already ran or was cancelled is a
  // no-op.
  void CancelTimer(TimerId id);

  const Clock* clock() const { return clock_; }
  absl::Time Now() const { return clock_->Now(); }

 private:
  void RunPosted();
  void RunDueTimers();
  int NextTimeoutMs() const;

  const Clock* clock_;
  int epoll_fd_ = -1;
  int wake_fd_ = -1;
  std::thread::id loop_thread_;

  std::mutex mu_;
  std::deque<Task> posted_ ABSL_GUARDED_BY(mu_);
  bool stop_requested_ ABSL_GUARDED_BY(mu_) = false;

  // shared_ptr: a callback may re-watch or unwatch its own fd while it runs.
  std::unordered_map<int, std::shared_ptr<FdCallback>> fds_;
  std::map<std::pair<absl::Time, TimerId>, Task> timers_;
  std::unordered_map<TimerId, absl::Time> timer_due_;
  TimerId next_timer_id_ = 1;
};

}  // namespace fetchfleet
